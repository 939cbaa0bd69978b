package main

import (
	"os"

	"golang.org/x/sys/windows"
)

// The option numbers in Winsock.
const (
	solSocket   = windows.SOL_SOCKET
	soRcvBuf    = windows.SO_RCVBUF
	soKeepAlive = windows.SO_KEEPALIVE
	ipprotoTCP  = windows.IPPROTO_TCP
	tcpNoDelay  = windows.TCP_NODELAY
)

// getsockoptInt is Winsock's getsockopt() for an int option, on the
// SOCKET handle that syscall.RawConn hands to its callbacks.
func getsockoptInt(fd uintptr, level, opt int) (int, error) {
	v, err := windows.GetsockoptInt(windows.Handle(fd), level, opt)
	return v, os.NewSyscallError("getsockopt", err)
}

// setsockoptInt is Winsock's setsockopt() for an int option.
func setsockoptInt(fd uintptr, level, opt, value int) error {
	return os.NewSyscallError("setsockopt", windows.SetsockoptInt(windows.Handle(fd), level, opt, value))
}
