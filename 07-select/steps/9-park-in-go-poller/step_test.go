//go:build linux || darwin

package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Step 9's tests run its serve in this test process, with the back-end
// this step changed: epoll on Linux (kqueue on macOS, unchanged).

func TestIdleLoopParksInGosPollerInsteadOfASystemCall(t *testing.T) {
	// The fix for step 8. With nobody connected, the loop's goroutine
	// no longer sleeps in epoll_wait: it is parked in Go's runtime
	// poller, [IO wait] in a goroutine dump, like a goroutine reading a
	// net.Conn. It holds no thread, so the scheduler has nothing to take
	// back, and the runtime wakes it when the epoll descriptor becomes
	// readable.
	if runtime.GOOS != "linux" {
		t.Skip("step 9 changed the epoll back-end only: kqueue still waits inside kevent")
	}
	start(t, newBackEnd(t, "best"), time.Minute)
	state, stack := loopWaitState(t)
	assert.Equal(t, "IO wait", state, "the idle loop should be parked in Go's poller:\n%s", stack)
	assert.Contains(t, stack, "internal/poll.runtime_pollWait(", "parked where a net.Conn read parks")
}

func TestIdleTimeoutStillEndsTheWait(t *testing.T) {
	// A silent client leaves the loop nothing to wake it but its
	// deadline, which now is a read deadline on the epoll descriptor.
	// Two clients, one after the other, so that the wait meets both
	// cases of setDeadline: the deadline set for the first is kept
	// while the second arrives (it is not later than needed), and a
	// new one is set for the second once the first has gone.
	addr, _ := start(t, newBackEnd(t, "best"), 200*time.Millisecond)
	first := connect(t, addr)
	second := connect(t, addr)
	for _, c := range []*testClient{first, second} {
		rest, err := io.ReadAll(c.r)
		require.NoError(t, err, "want the goodbye and a clean end")
		assert.Equal(t, "bye: idle for 200ms, closing\n", string(rest))
	}
}

func TestStopStillWakesTheIdleLoop(t *testing.T) {
	// With nobody connected the loop waits with no deadline at all:
	// only the self-pipe, readable once Ctrl+C is pressed, can end the
	// wait. stop fails the test if serve does not return.
	_, stop := start(t, newBackEnd(t, "best"), time.Minute)
	state, stack := loopWaitState(t)
	if runtime.GOOS == "linux" {
		require.Equal(t, "IO wait", state, "the loop should be parked before the stop:\n%s", stack)
	}
	stop()
}

func TestStopSaysGoodbyeWithEveryBackEnd(t *testing.T) {
	for name := range backEnds {
		t.Run(name, func(t *testing.T) {
			addr, stop := start(t, newBackEnd(t, name), time.Minute)
			c := connect(t, addr)
			c.echo(t, "mid-conversation\n")
			stop()
			rest, err := io.ReadAll(c.r)
			require.NoError(t, err, "want a clean end")
			assert.Equal(t, byeShutdown, string(rest))
		})
	}
}

// ---- the machinery ----

// wait bounds every blocking step, so that a broken step fails a test
// instead of hanging it.
const wait = 10 * time.Second

// start runs the step's server with poller p and idleTimeout on a free
// port, logging into a buffer. It returns the address, and stop, which
// does what Ctrl+C does and waits for serve to return.
func start(t *testing.T, p poller, idleTimeout time.Duration) (addr string, stop func()) {
	t.Helper()
	lfd, err := listen("127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve(ctx, lfd, p, idleTimeout, time.Second, &syncBuffer{})
	}()
	stop = func() {
		t.Helper()
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("serve did not return after the stop")
		}
	}
	t.Cleanup(stop)
	return localAddr(lfd), stop
}

// backEnds builds each poller this platform has, by name.
var backEnds = map[string]func() (poller, error){
	"poll": func() (poller, error) { return newPoll(), nil },
	"best": newBestPoller, // epoll on Linux, kqueue on macOS
}

func newBackEnd(t *testing.T, name string) poller {
	t.Helper()
	p, err := backEnds[name]()
	require.NoError(t, err)
	return p
}

// syncBuffer is a log that the server goroutine and a test may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// testClient is a connection whose greeting has been read.
type testClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func connect(t *testing.T, addr string) *testClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	c := &testClient{conn: conn, r: bufio.NewReader(conn)}
	line, err := c.r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, greeting, line)
	return c
}

// echo sends msg and reads its reply, "OK..." and msg.
func (c *testClient) echo(t *testing.T, msg string) {
	t.Helper()
	_, err := c.conn.Write([]byte(msg))
	require.NoError(t, err)
	reply := make([]byte, len("OK...")+len(msg))
	_, err = io.ReadFull(c.r, reply)
	require.NoError(t, err)
	assert.Equal(t, "OK..."+msg, string(reply))
}

// loopWaitState waits until serve's goroutine is blocked in the poller's
// wait, and says how, with its stack: "syscall", a thread asleep in the
// kernel for it, or "IO wait", parked in Go's runtime poller, as the
// goroutine of a net.Conn read is. It reads the goroutine dump that
// runtime/pprof writes (what /debug/pprof/goroutine?debug=2 shows).
// Whatever the goroutine passes through on its way (running, runnable,
// a system call that does not wait) is not an answer: it looks again.
func loopWaitState(t *testing.T) (state, stack string) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	again := time.NewTicker(time.Millisecond)
	defer again.Stop()
	var last string
	for {
		var dump bytes.Buffer
		require.NoError(t, pprof.Lookup("goroutine").WriteTo(&dump, 2))
		for _, g := range strings.Split(dump.String(), "\n\n") {
			m := goroutineHeader.FindStringSubmatch(g)
			if m == nil || !serveFrame.MatchString(g) || !pollerWaitFrame.MatchString(g) {
				continue
			}
			last = g
			state := m[1]
			if state == "IO wait" || state == "syscall" && !askFrame.MatchString(g) {
				return state, g
			}
		}
		select {
		case <-again.C:
		case <-deadline.C:
			t.Fatalf("serve's goroutine did not settle in the poller's wait within %v; last seen:\n%s", wait, last)
		}
	}
}

var (
	goroutineHeader = regexp.MustCompile(`^goroutine \d+ [^\[]*\[([^\],]+)`)
	serveFrame      = regexp.MustCompile(`(?m)^[^\s(]+\.serve\(`)
	pollerWaitFrame = regexp.MustCompile(`\.\(\*(epoller|kqueuePoller)\)\.wait\(`)
	// askFrame is epoller.poll: epoll_wait asked not to wait.
	askFrame = regexp.MustCompile(`\.\(\*epoller\)\.poll\(`)
)
