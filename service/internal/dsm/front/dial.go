package front

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// dial connects to the controller with a plain blocking socket rather than the net package's:
// a poller (epoll, its thread and wake-ups) buys nothing for the one connection of a process
// that lives a few milliseconds, and costs its start-up on every request of the app window.
// The controller is on loopback (DefaultControllerURL); host is an IP literal or localhost.
func dial(host string, timeout time.Duration) (*conn, error) {
	h, p, ok := cutHostPort(host)
	if !ok {
		return nil, fmt.Errorf("controller address %q: want host:port", host)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("controller address %q: bad port", host)
	}
	if h == "localhost" {
		h = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return nil, fmt.Errorf("controller address %q: the front reaches the controller by an IP address (%v)", host, err)
	}
	var sa syscall.Sockaddr
	family := syscall.AF_INET
	if ip.Is4() || ip.Is4In6() {
		sa = &syscall.SockaddrInet4{Port: port, Addr: ip.Unmap().As4()}
	} else {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: port, Addr: ip.As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := connect(fd, sa, timeout); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("dial tcp %s: %w", host, err)
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	return &conn{fd: fd}, nil
}

// conn is the connection to the controller: a blocking socket read and written with plain
// system calls (not an os.File, whose finalizer and poller registration this one connection
// does not need).
type conn struct{ fd int }

func (c *conn) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(c.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, fmt.Errorf("read from the controller: no answer within %s", headerTimeout)
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (c *conn) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := syscall.Write(c.fd, p[written:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return written, os.NewSyscallError("write", err)
		}
		written += n
	}
	return written, nil
}

func (c *conn) Close() error { return syscall.Close(c.fd) }

// connect starts a non-blocking connect and waits for it at most timeout.
func connect(fd int, sa syscall.Sockaddr, timeout time.Duration) error {
	err := syscall.Connect(fd, sa)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, syscall.EINPROGRESS) && !errors.Is(err, syscall.EINTR):
		return os.NewSyscallError("connect", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("connect: timed out after %s", timeout)
		}
		var w syscall.FdSet
		w.Bits[fd/64] |= 1 << (uint(fd) % 64)
		tv := syscall.NsecToTimeval(left.Nanoseconds())
		n, err := syscall.Select(fd+1, nil, &w, nil, &tv)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return os.NewSyscallError("select", err)
		}
		if n == 0 {
			continue // the deadline check above ends it
		}
		soErr, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err != nil {
			return os.NewSyscallError("getsockopt", err)
		}
		if soErr != 0 {
			return os.NewSyscallError("connect", syscall.Errno(soErr))
		}
		return nil
	}
}

// setReadTimeout bounds each read (SO_RCVTIMEO); 0 lifts the bound.
func (c *conn) setReadTimeout(d time.Duration) error {
	tv := syscall.NsecToTimeval(d.Nanoseconds())
	return os.NewSyscallError("setsockopt", syscall.SetsockoptTimeval(c.fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv))
}

// cutHostPort splits host:port and [v6]:port, as net.SplitHostPort does: an IPv6 address
// without brackets has no port to cut.
func cutHostPort(s string) (host, port string, ok bool) {
	if rest, isV6 := strings.CutPrefix(s, "["); isV6 {
		host, port, ok = strings.Cut(rest, "]:")
		if !ok {
			return "", "", false
		}
	} else {
		i := strings.LastIndexByte(s, ':')
		if i < 0 || strings.IndexByte(s[:i], ':') >= 0 {
			return "", "", false
		}
		host, port = s[:i], s[i+1:]
	}
	return host, port, host != "" && port != ""
}
