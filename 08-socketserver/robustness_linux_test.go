package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAcceptRecoversFromTooManyOpenFiles lowers the process's descriptor
// limit until Accept fails with EMFILE, then raises it back. The server
// must log the trouble once and serve the waiting client afterwards.
// Descriptors and their limit belong to the whole process: one that an
// earlier test's connection frees late would let Accept succeed. So the
// test runs alone, in a process of its own.
func TestAcceptRecoversFromTooManyOpenFiles(t *testing.T) {
	if runAlone(t) {
		return
	}
	var orig syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig))
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })

	srv := startServer(t, "-addr", "127.0.0.1:0")

	// Set the limit a little above the highest descriptor in use, then
	// fill every free number below it with /dev/null...
	low := orig
	low.Cur = uint64(highestFD(t) + 16)
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))
	var fillers []*os.File
	closeFillers := func() {
		for _, f := range fillers {
			f.Close()
		}
		fillers = nil
	}
	defer closeFillers()
	for {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		require.NoError(t, err)
		fillers = append(fillers, f)
		require.Less(t, len(fillers), 10000, "the lowered limit does not seem to apply")
	}
	// ...and free exactly one: the client's socket takes it, and the
	// server's Accept finds no descriptor left for its side.
	fillers[len(fillers)-1].Close()
	fillers = fillers[:len(fillers)-1]
	conn, replies := dialLines(t, srv.addr)

	line := waitForLine(t, srv.out, "accept: ")
	assert.Contains(t, line, "too many open files")

	// Descriptors free up again: the server recovers on its own.
	closeFillers()
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig))
	assert.Equal(t, "BACK", askLine(t, conn, replies, "back"))
	assertFreshClientIsServed(t, srv.addr)
}

// highestFD returns the highest descriptor number this process has open.
func highestFD(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	highest := 0
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > highest {
			highest = n
		}
	}
	return highest
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
