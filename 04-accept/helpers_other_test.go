//go:build !windows

package main

import "testing"

// inLinuxWords returns line unchanged: the README's transcripts are in
// Linux's words, and other Unix systems word these errors the same way
// (helpers_windows_test.go translates Windows' words).
func inLinuxWords(t *testing.T, err error, line string) string {
	t.Helper()
	return line
}
