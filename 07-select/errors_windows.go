//go:build windows

package main

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// winsock maps each syscall.E* value that this program checks to the
// number Winsock reports for the same cause.
var winsock = map[syscall.Errno]syscall.Errno{
	syscall.EMFILE:        windows.WSAEMFILE,
	syscall.EACCES:        windows.WSAEACCES,
	syscall.EADDRINUSE:    windows.WSAEADDRINUSE,
	syscall.EADDRNOTAVAIL: windows.WSAEADDRNOTAVAIL,
	syscall.ECONNABORTED:  windows.WSAECONNABORTED,
	syscall.ECONNRESET:    windows.WSAECONNRESET,
	syscall.ECONNREFUSED:  windows.WSAECONNREFUSED,
}
