//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// The option numbers on Linux, macOS and the BSDs.
const (
	solSocket   = unix.SOL_SOCKET
	soRcvBuf    = unix.SO_RCVBUF
	soKeepAlive = unix.SO_KEEPALIVE
	ipprotoTCP  = unix.IPPROTO_TCP
	tcpNoDelay  = unix.TCP_NODELAY
)

// getsockoptInt is getsockopt(2) for an int option, on the descriptor
// that syscall.RawConn hands to its callbacks.
func getsockoptInt(fd uintptr, level, opt int) (int, error) {
	v, err := unix.GetsockoptInt(int(fd), level, opt)
	return v, os.NewSyscallError("getsockopt", err)
}

// setsockoptInt is setsockopt(2) for an int option.
func setsockoptInt(fd uintptr, level, opt, value int) error {
	return os.NewSyscallError("setsockopt", unix.SetsockoptInt(int(fd), level, opt, value))
}
