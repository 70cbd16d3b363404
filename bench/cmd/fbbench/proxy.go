package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"syscall"
	"time"
)

// countingProxy sits on a unix socket in front of the engine's and counts Engine API requests by
// the process that made them (SO_PEERCRED), so forgebox and Compose are counted the same way,
// and requests from anything else that uses the socket (the runner stand-in in the stack) are
// not counted at all.
type countingProxy struct {
	path  string
	srv   *http.Server
	mu    sync.Mutex
	byPID map[int32]int
}

type pidKey struct{}

func startProxy(path, upstream string) (*countingProxy, error) {
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The runner container mounts this socket: it must be usable by root in containers.
	os.Chmod(path, 0o660)
	p := &countingProxy{path: path, byPID: map[int32]int{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "docker"
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", upstream)
			},
			MaxIdleConnsPerHost: 16,
		},
		FlushInterval: -1, // streams (events, logs, pull progress) pass at once
		ErrorLog:      nil,
	}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if pid, ok := r.Context().Value(pidKey{}).(int32); ok {
				p.mu.Lock()
				p.byPID[pid]++
				p.mu.Unlock()
			}
			rp.ServeHTTP(w, r)
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, pidKey{}, peerPID(c))
		},
		ReadHeaderTimeout: time.Minute,
	}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("proxy: %v", err)
		}
	}()
	return p, nil
}

// calls returns how many requests pid made, and forgets them.
func (p *countingProxy) calls(pid int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.byPID[int32(pid)]
	delete(p.byPID, int32(pid))
	return n
}

func (p *countingProxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p.srv.Shutdown(ctx)
	p.srv.Close()
	os.Remove(p.path)
}

func peerPID(c net.Conn) int32 {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1
	}
	pid := int32(-1)
	raw.Control(func(fd uintptr) {
		if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			pid = cred.Pid
		}
	})
	return pid
}
