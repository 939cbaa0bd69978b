// SO_BINDTODEVICE exists on Linux only.
package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// bindToDevice ties the socket to one network interface by name, here
// the loopback "lo", and reads the name back. Its value is a string, not
// an int. Before Linux 5.7 setting it needed CAP_NET_RAW (EPERM).
func bindToDevice(s sock) (string, error) {
	if err := unix.SetsockoptString(s, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "lo"); err != nil {
		return "", os.NewSyscallError("setsockopt", err)
	}
	name, err := unix.GetsockoptString(s, unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
	return name, os.NewSyscallError("getsockopt", err)
}
