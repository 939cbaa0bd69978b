//go:build (exercise || solution) && windows

package main

import (
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/windows"
)

// Winsock reports its own numbers (WSAEADDRINUSE is 10048), not the
// syscall.E* values Go defines on Windows: each still gets its entry in
// docs/errors.md.
func TestWinsockNumbersGetTheSameExplanation(t *testing.T) {
	for errno, anchor := range map[syscall.Errno]string{
		windows.WSAEADDRINUSE:   "docs/errors.md#eaddrinuse",
		windows.WSAECONNREFUSED: "docs/errors.md#econnrefused",
		windows.WSAECONNRESET:   "docs/errors.md#econnreset",
		windows.WSAEMFILE:       "docs/errors.md#emfile",
	} {
		err := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", errno)}
		assert.Contains(t, explain(err), anchor, "%v", errno)
	}
}
