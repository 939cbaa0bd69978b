//go:build !linux

package main

import "testing"

// The socket-level demonstrations live in sockets_linux_test.go: they
// read Linux's /proc files and rely on Linux's backlog rules and error
// numbers. Here they are skipped, by name, so the gap is visible.

const linuxOnly = "needs Linux: it makes sockets with golang.org/x/sys/unix and reads /proc; see sockets_linux_test.go"

func TestGoListenersSetSOREUSEADDR(t *testing.T) { t.Skip(linuxOnly) }

func TestWithoutSOREUSEADDRARestartFailsWhileTIMEWAITHoldsThePort(t *testing.T) {
	t.Skip(linuxOnly)
}

func TestGoAsksForTheSystemMaximumBacklog(t *testing.T) { t.Skip(linuxOnly) }

func TestAFullBacklogMakesTheNextClientWaitNotRefused(t *testing.T) { t.Skip(linuxOnly) }

func TestClientsStillInTheBacklogAreResetWhenTheServerStops(t *testing.T) { t.Skip(linuxOnly) }
