//go:build windows

package main

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// winsock maps each Unix error this program classifies to the number
// Winsock reports for it. On Windows, package syscall gives the Unix
// names values of its own (syscall.EADDRINUSE is not 10048), which the
// system never returns for a socket.
var winsock = map[syscall.Errno]syscall.Errno{
	syscall.EACCES:        windows.WSAEACCES,        // 10013
	syscall.EMFILE:        windows.WSAEMFILE,        // 10024
	syscall.EADDRINUSE:    windows.WSAEADDRINUSE,    // 10048
	syscall.EADDRNOTAVAIL: windows.WSAEADDRNOTAVAIL, // 10049
	syscall.ECONNABORTED:  windows.WSAECONNABORTED,  // 10053
	syscall.ECONNRESET:    windows.WSAECONNRESET,    // 10054
	syscall.ENOBUFS:       windows.WSAENOBUFS,       // 10055
	syscall.ECONNREFUSED:  windows.WSAECONNREFUSED,  // 10061
}

// isErrno reports whether err holds errno, or the Winsock number for the
// same cause.
func isErrno(err error, errno syscall.Errno) bool {
	wsa, ok := winsock[errno]
	return errors.Is(err, errno) || (ok && errors.Is(err, wsa))
}
