//go:build !linux

package main

import "testing"

func TestAcceptRecoversFromTooManyOpenFiles(t *testing.T) {
	t.Skip("Linux only: the test lowers RLIMIT_NOFILE and counts descriptors in /proc/self/fd")
}
