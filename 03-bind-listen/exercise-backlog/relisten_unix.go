//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// relisten calls listen(2) on a socket that already listens. Linux then
// just takes the new queue length. macOS and the BSDs accept the call
// too; this exercise has been run on Linux only.
func relisten(fd uintptr, backlog int) error {
	return os.NewSyscallError("listen", unix.Listen(int(fd), backlog))
}
