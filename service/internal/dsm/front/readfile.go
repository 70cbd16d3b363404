package front

import (
	"io/fs"
	"syscall"
)

// readSmall reads a small file (a session record, front.secret, cgi.json) with plain system
// calls. os.ReadFile would do the same work, but the first os.Open of a process starts the
// runtime's poller (an epoll instance, an eventfd, a registration the kernel refuses for a
// regular file), which is a measurable part of a process that lives a few milliseconds
// (bench/README.md, "The DSM app window"). Errors are *fs.PathError, as os.ReadFile's.
func readSmall(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	for err == syscall.EINTR {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	b := make([]byte, 0, 512)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := syscall.Read(fd, b[len(b):cap(b)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// exists says whether path names something this process can stat.
func exists(path string) bool {
	var st syscall.Stat_t
	return syscall.Stat(path, &st) == nil
}
