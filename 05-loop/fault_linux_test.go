package main

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This test changes a limit of the whole test process, so it must not
// run in parallel with others (it does not call t.Parallel).
func TestAcceptRecoversFromTooManyOpenFiles(t *testing.T) {
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
	log := srv.out.String()
	assert.Equal(t, 1, strings.Count(log, "accept failed"), "one line when the failures start:\n%s", log)
	assert.Equal(t, 1, strings.Count(log, "accepting again after"), "one line when they end:\n%s", log)
	assert.Contains(t, log, "too many open files")
	assert.Contains(t, log, "(see docs/errors.md#emfile)")
}
