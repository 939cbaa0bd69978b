//go:build windows

package main

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// winsock maps each syscall.E* value that this program checks to the
// number Winsock reports for the same cause.
var winsock = map[syscall.Errno]syscall.Errno{
	syscall.EADDRINUSE:   windows.WSAEADDRINUSE,
	syscall.ECONNABORTED: windows.WSAECONNABORTED,
	syscall.ECONNRESET:   windows.WSAECONNRESET,
}
