package front

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Remembered sessions. Each app-window request is one index.cgi process, and DSM's check costs
// two more process starts (authenticate.cgi, `id -Gn`): most of the front's time (bench/README.md,
// "The DSM app window"). The window polls with GETs every few seconds, so a GET whose DSM
// session (cookie, SynoToken and client address together) was found to be an administrator's
// less than SessionTTL ago skips both. Anything else, and every request that changes something,
// asks DSM each time. A logout or a removal from the administrators group thus reaches the
// window's reads at most SessionTTL late.

// SessionTTL is how long an administrator's session is remembered for GETs.
const SessionTTL = 10 * time.Second

const sessionDirName = "front-sessions"

// sessionKey names a DSM session without keeping any of it: a hash of the cookie, the token
// and the client's address. "" when the request carries no cookie (nothing to remember).
func sessionKey(r *Request) string {
	cookie := r.Header.Get("Cookie")
	if cookie == "" || (r.Method != "GET" && r.Method != "HEAD") {
		return ""
	}
	token := r.Header.Get("X-SYNO-TOKEN")
	if token == "" {
		token = r.Query("SynoToken")
	}
	host := splitHost(r.RemoteAddr)
	sum := sha256.Sum256([]byte("forgebox front session\x00" + cookie + "\x00" + token + "\x00" + host))
	return hex.EncodeToString(sum[:])
}

// rememberedUser is the administrator a session key was found to be, if that was less than ttl
// ago.
func (f *Front) rememberedUser(key string) (string, bool) {
	if key == "" || f.SessionTTL <= 0 {
		return "", false
	}
	b, err := readSmall(filepath.Join(f.Env.VarDir, sessionDirName, key))
	if err != nil {
		return "", false
	}
	user, exp, ok := strings.Cut(strings.TrimSpace(string(b)), "\n")
	until, err := strconv.ParseInt(exp, 10, 64)
	now := time.Now()
	if !ok || err != nil || !validUser(user) || now.UnixMilli() >= until || until > now.Add(f.SessionTTL).UnixMilli() {
		return "", false
	}
	return user, true
}

// rememberSession records an administrator's session for SessionTTL, and drops expired records.
// Best effort: a var dir index.cgi may not write only costs the next request DSM's check.
func (f *Front) rememberSession(key, user string) {
	if key == "" || f.SessionTTL <= 0 {
		return
	}
	dir := filepath.Join(f.Env.VarDir, sessionDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	now := time.Now()
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 16 {
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > f.SessionTTL {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	tmp := filepath.Join(dir, "."+key+".tmp")
	body := user + "\n" + strconv.FormatInt(now.Add(f.SessionTTL).UnixMilli(), 10) + "\n"
	if os.WriteFile(tmp, []byte(body), 0o600) == nil {
		os.Rename(tmp, filepath.Join(dir, key))
	}
}
