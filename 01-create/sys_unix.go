//go:build unix

// The system calls of this lesson on Linux, macOS and the BSDs, through
// golang.org/x/sys/unix. sys_windows.go is the same for Winsock.
package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sock is what socket(2) returns on Unix: a file descriptor, the same
// kind of small number that names an open file.
type sock = int

// The numbers behind the names. They differ between platforms, which is
// why they come from golang.org/x/sys/unix and not from this file.
const (
	afInet      = unix.AF_INET
	afInet6     = unix.AF_INET6
	afUnix      = unix.AF_UNIX
	sockStream  = unix.SOCK_STREAM
	sockDgram   = unix.SOCK_DGRAM
	sockRaw     = unix.SOCK_RAW
	ipprotoICMP = unix.IPPROTO_ICMP
	ipprotoTCP  = unix.IPPROTO_TCP
	ipprotoUDP  = unix.IPPROTO_UDP
	solSocket   = unix.SOL_SOCKET
	soType      = unix.SO_TYPE
	soError     = unix.SO_ERROR
	soReuseAddr = unix.SO_REUSEADDR
	soKeepAlive = unix.SO_KEEPALIVE
	soBroadcast = unix.SO_BROADCAST
	soDontRoute = unix.SO_DONTROUTE
	soOOBInline = unix.SO_OOBINLINE
	soRcvBuf    = unix.SO_RCVBUF
	tcpNoDelay  = unix.TCP_NODELAY
)

// newSocket is socket(2): it asks the kernel for a new socket and gets
// back a descriptor, or an errno saying why not.
func newSocket(family, typ, proto int) (sock, error) {
	fd, err := unix.Socket(family, typ, proto)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}

// closeSocket is close(2): the descriptor is free for reuse afterwards.
func closeSocket(s sock) error {
	return os.NewSyscallError("close", unix.Close(s))
}

// getInt is getsockopt(2) for the many options whose value is an int.
func getInt(s sock, level, opt int) (int, error) {
	v, err := unix.GetsockoptInt(s, level, opt)
	return v, os.NewSyscallError("getsockopt", err)
}

// setInt is setsockopt(2) for an int option (a boolean is 0 or 1).
func setInt(s sock, level, opt, value int) error {
	return os.NewSyscallError("setsockopt", unix.SetsockoptInt(s, level, opt, value))
}

// sockFromRaw turns the uintptr that syscall.RawConn hands to its
// callbacks back into a descriptor.
func sockFromRaw(fd uintptr) sock { return int(fd) }

// sockName is how the program shows a socket: its descriptor number.
func sockName(s sock) string { return fmt.Sprintf("fd=%d", s) }

// errName gives the symbolic name of the errno inside err, such as
// EAFNOSUPPORT, which is what C programmers and man pages call it.
func errName(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return "error"
	}
	if name := unix.ErrnoName(errno); name != "" {
		return name
	}
	return fmt.Sprintf("errno %d", int(errno))
}
