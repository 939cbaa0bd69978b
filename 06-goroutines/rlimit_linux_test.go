package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAcceptRecoversFromTooManyOpenFiles runs the server out of file
// descriptors, so that Accept fails with EMFILE, then gives them back.
// Descriptors and their limit belong to the whole process: one that an
// earlier test's connection frees late would let Accept succeed (seen
// once in CI). So the test runs alone, in a process of its own.
func TestAcceptRecoversFromTooManyOpenFiles(t *testing.T) {
	if runAlone(t) {
		return
	}
	srv := startServer(t)

	// Lower the process's descriptor limit to a little above the highest
	// descriptor in use, and restore it whatever happens.
	var saved syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &saved))
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved) })
	low := saved
	low.Cur = highestOpenFD(t) + 16
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))

	// Take every free descriptor below the limit, then give one back:
	// the client's socket takes that one, and the server's Accept then
	// has none left for the connection.
	var fillers []*os.File
	restore := func() {
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved)
		for _, f := range fillers {
			f.Close()
		}
		fillers = nil
	}
	t.Cleanup(restore)
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			require.True(t, errors.Is(err, syscall.EMFILE), "want EMFILE, got %v", err)
			break
		}
		fillers = append(fillers, f)
	}
	require.NotEmpty(t, fillers)
	fillers[len(fillers)-1].Close()
	fillers = fillers[:len(fillers)-1]

	conn, err := net.DialTimeout("tcp", srv.addr, wait)
	require.NoError(t, err, "the kernel completes the connection into the backlog")
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	line := srv.out.waitFor(t, "accept failed")
	assert.Contains(t, line, "too many open files")
	assert.Contains(t, line, "docs/errors.md#emfile")

	// While descriptors are short the client is not served. The loop
	// keeps retrying meanwhile; a short read deadline shows that no
	// greeting comes (and gives the loop time for several retries).
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(150*time.Millisecond)))
	_, err = conn.Read(make([]byte, 1))
	require.True(t, isTimeout(err), "no greeting while out of descriptors, got %v", err)

	// Give the descriptors back: the waiting client is accepted and
	// served, and the streak of failures was logged once.
	restore()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	assert.Equal(t, greetingLine+"\n", readLine(t, conn))
	send(t, conn, "back to normal?\n")
	readEcho(t, conn, "back to normal?\n")
	assert.Contains(t, srv.out.waitFor(t, "accepting again"), "failed attempts")
	assert.Equal(t, 1, srv.out.count("accept failed"), "a streak of failures is logged once")
	assertServesAFreshClient(t, srv.addr)
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

// highestOpenFD returns the largest file descriptor number this process
// has open, from /proc/self/fd.
func highestOpenFD(t *testing.T) uint64 {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	var highest uint64
	for _, e := range entries {
		var fd uint64
		for _, c := range e.Name() {
			fd = fd*10 + uint64(c-'0')
		}
		highest = max(highest, fd)
	}
	return highest
}
