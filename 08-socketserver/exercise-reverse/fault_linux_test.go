//go:build (exercise || solution) && linux

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

// TestServerSurvivesARealShortageOfFileDescriptors lowers the process's
// descriptor limit until Accept fails with EMFILE, then raises it back:
// the waiting client is served, and the server never stopped. The limit
// belongs to the whole process, so the test runs alone, in a process
// of its own.
func TestServerSurvivesARealShortageOfFileDescriptors(t *testing.T) {
	if runAlone(t) {
		return
	}
	var orig syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig))
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })
	srv := startProgram(t)

	// A limit a little above the highest descriptor in use, every free
	// number below it taken, then exactly one freed: the client's
	// socket takes it, and Accept finds none for the server's side.
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
	fillers[len(fillers)-1].Close()
	fillers = fillers[:len(fillers)-1]
	c := dialLines(t, srv.addr)
	line := srv.out.waitFor(t, "accept failed")
	assert.Contains(t, line, "too many open files")

	closeFillers()
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig))
	assert.Equal(t, "BACK", c.ask(t, "back"))
	assert.Equal(t, "AGAIN", dialLines(t, srv.addr).ask(t, "again"))
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
// caller then returns. Inside that new process it returns false.
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
