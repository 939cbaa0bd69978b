package main

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// On Linux a listener whose backlog is full does not refuse a new
// client: it drops the client's SYN and lets it try again later. So a
// connect to it times out, with no outside address needed. Go's
// net.Listen always asks for the system's maximum backlog, so this test
// makes its listener with system calls and a backlog of 0.

func TestConnectToAFullBacklogTimesOut(t *testing.T) {
	port := fullBacklog(t)
	start := time.Now()
	_, err := runClient(t, "-host", "127.0.0.1", "-port", port, "-timeout", "200ms")
	require.Error(t, err)
	assert.Less(t, time.Since(start), wait)

	assert.True(t, isTimeout(err), "want a timeout, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#timeout)")
}

func TestDialTimeoutIsNotAlwaysErrDeadlineExceeded(t *testing.T) {
	// A dial's time limit lives in a context. When the context has run
	// out before the system call could even start, the error is "i/o
	// timeout" but not os.ErrDeadlineExceeded, the error that read and
	// write deadlines give. (When the limit passes while the connect
	// waits, it may be either, whichever timer fires first.) Only
	// net.Error's Timeout method is true for every kind.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	addrs := []net.IPAddr{{IP: net.ParseIP("127.0.0.1")}}

	_, err = connectFirst(context.Background(), addrs, port, time.Nanosecond, io.Discard)
	require.Error(t, err)
	assert.NotErrorIs(t, err, os.ErrDeadlineExceeded)
	var netErr net.Error
	require.ErrorAs(t, err, &netErr)
	assert.True(t, netErr.Timeout())
	assert.True(t, isTimeout(err))
}

func TestReadmeConnectTimeoutTranscript(t *testing.T) {
	port := fullBacklog(t)
	out, err := runClient(t, "-host", "127.0.0.1", "-port", port, "-timeout", "200ms")
	require.Error(t, err)
	assertTranscript(t, "connect-timeout", out+"error: "+explain(err)+"\n")
}

// fullBacklog returns the port of a listener that never accepts and
// whose backlog is already full.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	// Backlog 0: Linux still queues one connection (it checks "more
	// than the backlog"), so the queue is full after one client.
	require.NoError(t, unix.Listen(fd, 0))
	sa, err := unix.Getsockname(fd)
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))

	// Connect until one attempt times out: then the queue is full.
	for i := 0; i < 8; i++ {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			require.True(t, isTimeout(err), "filling the backlog: want a timeout, got %v", err)
			return strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
		}
		t.Cleanup(func() { conn.Close() })
	}
	t.Fatal("the backlog never filled up")
	return ""
}
