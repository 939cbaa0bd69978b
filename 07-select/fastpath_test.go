//go:build linux || darwin

package main

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestAReplyTheKernelTakesAtOnceIsNeitherCopiedNorAllocated shows the
// fast path of eventLoop.read: with nothing queued for the client, the
// reply goes out straight from the shared buffer, before read returns,
// and the connection keeps no bytes. A connected pair of Unix sockets
// stands in for the client, so nothing else in the process allocates.
func TestAReplyTheKernelTakesAtOnceIsNeitherCopiedNorAllocated(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		require.NoError(t, err)
		server, client := fds[0], fds[1]
		t.Cleanup(func() { unix.Close(server); unix.Close(client) })
		// Non-blocking on both ends: a reply that was not sent at once
		// shows up as EAGAIN below instead of a hang.
		require.NoError(t, unix.SetNonblock(server, true))
		require.NoError(t, unix.SetNonblock(client, true))

		p, err := newPoller(poller, false)
		require.NoError(t, err)
		t.Cleanup(func() { p.close() })
		l := newEventLoop(config{idleTimeout: time.Minute}, io.Discard, p)
		c := &conn{fd: server, peer: "socketpair", want: canRead}
		require.NoError(t, p.add(server, canRead))
		c.age = l.byAge.PushFront(c)
		l.conns[server] = c

		message := []byte("sixty-four bytes would do, and so does this line\n")
		want := append([]byte(marker), message...)
		reply := make([]byte, 2*len(want))
		var got int
		var readErr error
		exchange := func() {
			unix.Write(client, message)
			l.read(c)
			got, readErr = unix.Read(client, reply)
		}

		exchange()
		require.NoError(t, readErr, "the reply should be waiting as soon as read returns")
		assert.Equal(t, string(want), string(reply[:got]))
		assert.Nil(t, c.out, "nothing should be queued for the client")

		allocs := testing.AllocsPerRun(200, exchange)
		require.NoError(t, readErr)
		assert.Equal(t, string(want), string(reply[:got]))
		assert.Zero(t, allocs, "allocations per request on the fast path")
	})
}
