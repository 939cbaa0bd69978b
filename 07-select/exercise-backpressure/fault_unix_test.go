//go:build (exercise || solution) && (linux || darwin)

package main

import (
	"bufio"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// This test guards loop_unix.go, the part given to you: it passes on
// the starter as on the solution.

func TestLoopKeepsAcceptingWhileOutOfFileDescriptors(t *testing.T) {
	// The kernel, as the loop sees it, is out of descriptors for the
	// first three accepts, then has some again.
	fails := 3
	t.Cleanup(func() { acceptFunc = acceptConn })
	acceptFunc = func(lfd int) (int, unix.Sockaddr, error) {
		if fails > 0 {
			fails--
			return -1, nil, unix.EMFILE
		}
		return acceptConn(lfd)
	}
	srv := startServer(t)

	// The client waits in the backlog through the failures, then is
	// served: the loop paused, and the server did not stop.
	c := dial(t, srv.addr)
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, greeting, line)
	_, err = io.WriteString(c, "still there?\n")
	require.NoError(t, err)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "OK...still there?\n", line)

	log := srv.out.waitFor(t, "accepting again")
	assert.Equal(t, 1, strings.Count(log, "too many open files"), "a streak of failures is logged once:\n%s", log)
	assert.Contains(t, log, "docs/errors.md#emfile")
}
