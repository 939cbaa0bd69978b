package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Descriptors and their limit belong to the whole process: one that an
// earlier test's connection frees late would let Accept succeed. So the
// test runs alone, in a process of its own.
func TestAcceptRecoversFromTooManyOpenFiles(t *testing.T) {
	if runAlone(t) {
		return
	}
	srv := startServer(t)

	// Lower the descriptor limit a little above what is in use, then
	// fill every free slot below it, keeping one for the client.
	var saved syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &saved))
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	low := saved
	low.Cur = uint64(len(entries)) + 64
	require.Less(t, low.Cur, saved.Cur, "the limit is already too low for this test")
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))

	var filler []*os.File
	release := func() {
		for _, f := range filler {
			f.Close()
		}
		filler = nil
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved)
	}
	t.Cleanup(release)
	for {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		require.NoError(t, err)
		filler = append(filler, f)
	}
	require.NotEmpty(t, filler)
	filler[len(filler)-1].Close()
	filler = filler[:len(filler)-1]

	// The client's socket takes the last slot. The kernel completes the
	// handshake, but the server's Accept needs a descriptor too and
	// fails with EMFILE. The server logs it once and keeps retrying.
	c := connect(t, srv.addr)
	srv.out.waitFor(t, "the accept failure", func(out string) bool {
		return strings.Contains(out, "accept failed, retrying with back-off: ")
	})

	// Free the descriptors: the waiting client is accepted and served.
	release()
	c.greeted()
	c.ask("made it\n")
	c.leave()
	// And a client that arrives after the shortage is served too.
	fresh := connect(t, srv.addr)
	fresh.greeted()
	fresh.ask("and me\n")
	log := srv.out.waitFor(t, "the arrival of the fresh client", func(out string) bool {
		return strings.Contains(out, " "+fresh.conn.LocalAddr().String()+" connected\n")
	})
	assert.Equal(t, 1, strings.Count(log, "accept failed"), "one line when the failures start:\n%s", log)
	assert.Equal(t, 1, strings.Count(log, "accepting again after"), "one line when they end:\n%s", log)
	assert.Contains(t, log, "too many open files")
	assert.Contains(t, log, "(see docs/errors.md#emfile)")
}

// runAlone runs the calling test again in a new process of this test
// binary, with no other test in it, and reports whether it did so: the
// caller then returns. Inside that new process it returns false, and the
// test itself runs.
func runAlone(t *testing.T) bool {
	t.Helper()
	if os.Getenv("SOCKETSTEPS_ALONE") == t.Name() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), "SOCKETSTEPS_ALONE="+t.Name())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s in a process of its own:\n%s", t.Name(), out)
	require.Contains(t, string(out), "--- PASS: "+t.Name(), "the test did not run in the new process:\n%s", out)
	return true
}
