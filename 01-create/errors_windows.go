//go:build windows

package main

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// winsock maps each Unix error this lesson classifies to the number
// Winsock reports for it. On Windows, package syscall gives the Unix
// names values of its own (syscall.EAFNOSUPPORT is not 10047), which the
// system never returns for a socket.
var winsock = map[syscall.Errno]syscall.Errno{
	syscall.EACCES:          windows.WSAEACCES,          // 10013
	syscall.EINVAL:          windows.WSAEINVAL,          // 10022
	syscall.EMFILE:          windows.WSAEMFILE,          // 10024
	syscall.EPROTOTYPE:      windows.WSAEPROTOTYPE,      // 10041
	syscall.ENOPROTOOPT:     windows.WSAENOPROTOOPT,     // 10042
	syscall.EPROTONOSUPPORT: windows.WSAEPROTONOSUPPORT, // 10043
	syscall.ESOCKTNOSUPPORT: windows.WSAESOCKTNOSUPPORT, // 10044
	syscall.EAFNOSUPPORT:    windows.WSAEAFNOSUPPORT,    // 10047
}

// isErrno reports whether err holds errno, or the Winsock number for the
// same cause.
func isErrno(err error, errno syscall.Errno) bool {
	wsa, ok := winsock[errno]
	return errors.Is(err, errno) || (ok && errors.Is(err, wsa))
}
