//go:build !linux

package main

import "testing"

// The connect-timeout demonstrations live in timeout_linux_test.go: they
// need a listener with a tiny backlog, made with golang.org/x/sys/unix,
// and Linux's rule that a full backlog drops new connection requests
// (Windows refuses them instead). Here they are skipped, by name.

const linuxOnly = "needs Linux: a full backlog drops connection requests there; see timeout_linux_test.go"

func TestConnectToAFullBacklogTimesOut(t *testing.T) { t.Skip(linuxOnly) }

func TestDialTimeoutIsNotAlwaysErrDeadlineExceeded(t *testing.T) { t.Skip(linuxOnly) }

func TestReadmeConnectTimeoutTranscript(t *testing.T) { t.Skip(linuxOnly) }
