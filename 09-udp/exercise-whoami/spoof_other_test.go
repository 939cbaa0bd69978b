//go:build (exercise || solution) && !linux

package main

import "testing"

// canForge skips the test: sending from the server's own socket finds
// it among the process's descriptors in /proc/self/fd, which only Linux
// has.
func canForge(t *testing.T) {
	t.Helper()
	t.Skip("sending from the server's own socket finds it in /proc/self/fd, which only Linux has")
}

func sendFromServersSocket(t *testing.T, server string, payload []byte, to string) {
	t.Helper()
	canForge(t)
}
