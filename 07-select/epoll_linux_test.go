package main

// epoll's own behaviour, which the loop relies on (Linux only).

import (
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// closeConn asks epoll for nothing when it closes a client: closing a
// socket takes it out of the epoll set. That holds while the socket has
// no other copy; a copy left open (dup, or a child process) keeps the
// closed number in the set, still reporting events. The kernel lists an
// epoll set's members in /proc/self/fdinfo, one "tfd:" line each.
func TestAClosedSocketLeavesTheEpollSetUnlessACopyStaysOpen(t *testing.T) {
	inTheSet := func(p poller, fd int) bool {
		info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", p.(*epoller).fd))
		require.NoError(t, err)
		return regexp.MustCompile(fmt.Sprintf(`(?m)^tfd:\s+%d\s`, fd)).Match(info)
	}
	closeAWatchedSocket := func(keepACopy bool) (p poller, server, client int) {
		p, err := newPoller("epoll", false)
		require.NoError(t, err)
		t.Cleanup(func() { p.close() })
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		server, client = fds[0], fds[1]
		t.Cleanup(func() { unix.Close(client) })
		require.NoError(t, p.add(server, canRead))
		require.True(t, inTheSet(p, server), "a socket just added is in the set")
		if keepACopy {
			dup, err := unix.Dup(server)
			require.NoError(t, err)
			t.Cleanup(func() { unix.Close(dup) })
		}
		p.forget(server)
		require.NoError(t, unix.Close(server))
		return p, server, client
	}

	p, server, _ := closeAWatchedSocket(false)
	assert.False(t, inTheSet(p, server), "closed with no copy: out of the set, with no EPOLL_CTL_DEL")

	p, server, client := closeAWatchedSocket(true)
	assert.True(t, inTheSet(p, server), "closed while a copy stays open: still in the set")
	_, err := unix.Write(client, []byte("x")) // the copy's socket becomes readable
	require.NoError(t, err)
	ready, err := p.wait(time.Second)
	require.NoError(t, err)
	require.Len(t, ready, 1)
	assert.Equal(t, event{fd: server, ready: canRead}, ready[0], "an event for a number that is closed")
}
