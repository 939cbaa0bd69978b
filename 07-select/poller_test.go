//go:build linux || darwin

package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestPollServesTheSocketsThatWaitedFirst shows why pollPoller starts
// each scan where the last one stopped. poll reports readiness in the
// order of its list; read from the start every time, the last socket in
// the list would be served last on every wake-up.
func TestPollServesTheSocketsThatWaitedFirst(t *testing.T) {
	p, err := newPoller("poll", false)
	require.NoError(t, err)
	t.Cleanup(func() { p.close() })

	// Three sockets, in the poller's list in this order.
	var servers, clients [3]int
	for i := range servers {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		require.NoError(t, err)
		servers[i], clients[i] = fds[0], fds[1]
		t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
		require.NoError(t, p.add(servers[i], canRead))
	}
	readyOrder := func() []int {
		t.Helper()
		ready, err := p.wait(time.Second)
		require.NoError(t, err)
		var order []int
		for _, ev := range ready {
			order = append(order, ev.fd)
		}
		return order
	}
	send := func(i int) {
		_, err := unix.Write(clients[i], []byte("x"))
		require.NoError(t, err)
	}

	// The first two have input; the third, last in the list, has none.
	send(0)
	send(1)
	assert.Equal(t, []int{servers[0], servers[1]}, readyOrder())

	// Now all three have input (nobody read, so the first two still
	// do). The third waited while the others were served: it comes
	// first, then the scan goes round to the start of the list.
	send(2)
	assert.Equal(t, []int{servers[2], servers[0], servers[1]}, readyOrder())
}
