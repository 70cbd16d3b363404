// Package dsmstandins writes stand-ins of DSM's tools, which only exist on a NAS, for the tests
// of package dsm and of the app window's front (dsm/front). Each honours the part of the real
// tool's contract that forgebox relies on, and no more.
package dsmstandins

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var standins = map[string]string{
	// Stand-in for DSM's authenticate.cgi (guide: Application Authentication): it prints the
	// user of the session the cookie names, or nothing. Like DSM with "Improve protection
	// against CSRF" on, it wants that session's SynoToken in QUERY_STRING. Each call is
	// recorded, so tests can see what it was given.
	"authenticate.cgi": `#!/bin/sh
[ -n "$STANDIN_LOG" ] && echo "authenticate.cgi QUERY_STRING=$QUERY_STRING REQUEST_METHOD=$REQUEST_METHOD" >> "$STANDIN_LOG"
case "$HTTP_COOKIE" in
*id=admin-session*) user=admin token=tok-admin ;;
*id=alice-session*) user=alice token=tok-alice ;;
*) exit 0 ;;
esac
[ "$QUERY_STRING" = "SynoToken=$token" ] || exit 0
echo "$user"
`,
	// Stand-in for DSM's login.cgi run without credentials: the SynoToken of the session the
	// cookie names, after CGI headers, as the real one prints it.
	"login.cgi": `#!/bin/sh
[ -n "$STANDIN_LOG" ] && echo "login.cgi REQUEST_METHOD=$REQUEST_METHOD" >> "$STANDIN_LOG"
case "$HTTP_COOKIE" in
*id=admin-session*) token=tok-admin ;;
*id=alice-session*) token=tok-alice ;;
*) printf 'Content-Type: application/json\r\n\r\n{"success":false}\n'; exit 0 ;;
esac
printf 'Content-Type: application/json\r\n\r\n{"SynoToken":"%s","result":"success","success":true}\n' "$token"
`,
	// Stand-in for id on DSM: "id -Gn USER" lists the user's groups; an administrator is in
	// "administrators".
	"id": `#!/bin/sh
[ "$1" = "-Gn" ] || { echo "stand-in id: only -Gn USER" >&2; exit 2; }
case "$2" in
admin) echo "users administrators" ;;
alice) echo "users" ;;
*) echo "id: '$2': no such user" >&2; exit 1 ;;
esac
`,
	// Stand-in for DSM's servicetool port check: port 30443 is registered by "stand-in-vpn".
	"servicetool": `#!/bin/sh
[ "$1" = "--conf-port-conflict-check" ] || exit 2
if [ "$3" = "30443" ]; then
	printf 'IsConflict: true\tPort: %s\tProtocol: tcp\tServiceName: stand-in-vpn\n' "$3"
else
	printf 'IsConflict: false\tPort: %s\tProtocol: tcp\tServiceName: (null)\n' "$3"
fi
exit 0
`,
	// Stand-in for synopkghelper: records the update it was asked for.
	"synopkghelper": `#!/bin/sh
[ -n "$STANDIN_LOG" ] && echo "synopkghelper $*" >> "$STANDIN_LOG"
exit 0
`,
}

// Write writes the stand-ins into dir, readable and runnable by anyone (the install
// test runs them as the package user).
func Write(t testing.TB, dir string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for name, src := range standins {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o755)
		paths[name] = p
	}
	return paths
}

// MemInfo writes a stand-in /proc/meminfo with that much memory.
func MemInfo(t testing.TB, dir string, gib float64) string {
	t.Helper()
	p := filepath.Join(dir, "meminfo")
	kb := int64(gib * (1 << 20))
	if err := os.WriteFile(p, []byte("MemTotal:       "+strconv.FormatInt(kb, 10)+" kB\nMemFree:  1000 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
