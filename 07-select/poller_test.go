//go:build linux || darwin

package main

import (
	"bytes"
	"io"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
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

// The epoll back-end never sleeps in epoll_wait: it hands the epoll
// descriptor to Go's runtime poller and parks there (epoll_linux.go,
// step 9 of the ladder). The tests below prove that it does, that the
// two ways out of a wait, its timeout and Ctrl+C's self-pipe, still end
// it, and that a wait under load still allocates nothing.

func TestIdleEpollLoopParksInGosPollerInsteadOfASystemCall(t *testing.T) {
	skipUnlessEpoll(t)
	startServer(t, "-poller", "epoll")
	state, stack := eventLoopWaitState(t, "epoller")
	assert.Equal(t, "IO wait", state, "the idle epoll loop should be parked in Go's poller:\n%s", stack)
	assert.Contains(t, stack, "internal/poll.runtime_pollWait(", "parked where a net.Conn read parks")

	// The same dump tells the two apart: poll(2) still blocks a thread.
	startServer(t, "-poller", "poll")
	state, stack = eventLoopWaitState(t, "pollPoller")
	assert.Equal(t, "syscall", state, "the idle poll loop should wait inside poll(2):\n%s", stack)
}

func TestIdleTimeoutStillEndsAnEpollWaitParkedInGosPoller(t *testing.T) {
	// Silent clients leave the loop nothing to wake it but a deadline:
	// a read deadline on the epoll descriptor. Two clients, one after
	// the other, so that the wait meets both cases of setDeadline: the
	// deadline set for the first is kept while the second arrives (it
	// is not later than needed), and a new one is set for the second
	// once the first has gone.
	skipUnlessEpoll(t)
	srv := startServer(t, "-poller", "epoll", "-idle-timeout", "200ms")
	first := connect(t, srv.addr)
	second := connect(t, srv.addr)
	for _, c := range []*client{first, second} {
		rest, err := io.ReadAll(c.r)
		require.NoError(t, err, "want the goodbye and a clean end")
		assert.Equal(t, "bye: idle for 200ms, closing\n", string(rest))
	}
}

func TestStopWakesAnEpollLoopParkedInGosPoller(t *testing.T) {
	// With nobody connected, the loop waits with no deadline at all:
	// only the self-pipe, written when Ctrl+C cancels the context, can
	// make the epoll descriptor readable and end the wait.
	skipUnlessEpoll(t)
	srv := startServer(t, "-poller", "epoll")
	state, stack := eventLoopWaitState(t, "epoller")
	require.Equal(t, "IO wait", state, "the loop should be parked before the stop:\n%s", stack)
	srv.stop() // what Ctrl+C does
	require.NoError(t, srv.wait(t))
	srv.out.waitFor(t, "stopped")
}

func TestAnEpollWaitThatFindsASocketReadyAllocatesNothing(t *testing.T) {
	// Under load a wait finds a socket ready at once: it must cost no
	// allocation, with a timeout (through Go's poller) or without.
	skipUnlessEpoll(t)
	p, err := newPoller("epoll", false)
	require.NoError(t, err)
	t.Cleanup(func() { p.close() })
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	require.NoError(t, p.add(fds[0], canRead))
	_, err = unix.Write(fds[1], []byte("x")) // never read: ready every time
	require.NoError(t, err)
	for _, timeout := range []time.Duration{0, time.Minute, -1} {
		var ready []event
		allocs := testing.AllocsPerRun(100, func() { ready, err = p.wait(timeout) })
		require.NoError(t, err)
		require.Len(t, ready, 1, "the socket should be ready")
		assert.Zero(t, allocs, "allocations per wait with timeout %v", timeout)
	}
}

func skipUnlessEpoll(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("epoll is Linux's; kqueue still waits inside kevent")
	}
}

// eventLoopWaitState waits until the event loop's goroutine is blocked in
// the wait of the poller of type poller (epoller, pollPoller, …), and
// says how, with its stack: "syscall", a thread asleep in the kernel for
// it, or "IO wait", parked in Go's runtime poller, as the goroutine of a
// net.Conn read is. It reads the goroutine dump that runtime/pprof
// writes (what /debug/pprof/goroutine?debug=2 shows). Whatever the
// goroutine passes through on its way (running, runnable, a system call
// that does not wait) is not an answer: it looks again.
func eventLoopWaitState(t *testing.T, poller string) (state, stack string) {
	t.Helper()
	waitFrame := regexp.MustCompile(`\.\(\*` + poller + `\)\.wait\(`)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	again := time.NewTicker(time.Millisecond)
	defer again.Stop()
	var last string
	for {
		var dump bytes.Buffer
		require.NoError(t, pprof.Lookup("goroutine").WriteTo(&dump, 2))
		for _, g := range strings.Split(dump.String(), "\n\n") {
			m := goroutineState.FindStringSubmatch(g)
			if m == nil || !strings.Contains(g, ".(*eventLoop).run(") || !waitFrame.MatchString(g) {
				continue
			}
			last = g
			state := m[1]
			if state == "IO wait" || state == "syscall" && !strings.Contains(g, ".(*epoller).poll(") {
				return state, g
			}
		}
		select {
		case <-again.C:
		case <-deadline.C:
			t.Fatalf("the event loop did not settle in %s.wait within %v; last seen:\n%s", poller, wait, last)
		}
	}
}

// goroutineState finds a goroutine's state in its header line, such as
// "goroutine 7 [IO wait, 2 minutes]:".
var goroutineState = regexp.MustCompile(`^goroutine \d+ [^\[]*\[([^\],]+)`)
