package main

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Step 7's test runs its acceptLoop in this process, logging through the
// queue to a stdout that nobody reads.

func TestServerKeepsServingWhileNobodyReadsItsLog(t *testing.T) {
	ln := listen(t)
	stuck := newStuckWriter(t)
	queue := newLogQueue(stuck)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- acceptLoop(ctx, ln, config{idle: wait, grace: time.Second}, queue) }()

	// 600 clients make 1,200 log lines, more than the queue holds. Each
	// is served all the same.
	for i := 0; i < 600; i++ {
		c := dial(t, ln)
		c.expect(greeting)
		require.NoError(t, c.conn.Close())
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("the loop did not stop")
	}
	// Closing the queue waits no longer than asked, stdout stuck or not.
	assert.False(t, queue.close(time.Now().Add(100*time.Millisecond)))

	// Once stdout moves, the queued lines come out, and the count of the
	// lines that did not fit.
	stuck.release()
	stuck.to.waitFor(t, " lines dropped while the log was not being read\n")
}

// ---- the machinery ----

// wait bounds every blocking step, so that a broken step fails a test
// instead of hanging it.
const wait = 5 * time.Second

// countingListener hands out connections that count their Reads, so that
// a test can see a loop spin. Once the test is over, a Read blocks for
// good: that is what stops a loop that spins.
type countingListener struct {
	net.Listener
	accepted chan *countingConn
	over     chan struct{}
}

func listen(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &countingListener{Listener: ln, accepted: make(chan *countingConn, 16), over: make(chan struct{})}
	t.Cleanup(func() {
		close(l.over)
		ln.Close()
	})
	return l
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &countingConn{Conn: conn, over: l.over}
	select {
	case l.accepted <- c:
	default:
	}
	return c, nil
}

type countingConn struct {
	net.Conn
	reads atomic.Int64
	over  chan struct{}
}

func (c *countingConn) Read(p []byte) (int, error) {
	select {
	case <-c.over:
		select {} // the test is over: stop here for good
	default:
	}
	n, err := c.Conn.Read(p)
	c.reads.Add(1)
	return n, err
}

// client is a test client with a deadline on everything it does.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, ln net.Listener) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// expect reads one line and checks it.
func (c *client) expect(want string) {
	c.t.Helper()
	got, err := c.r.ReadString('\n')
	require.NoError(c.t, err, "waiting for %q", want)
	require.Equal(c.t, want, got)
}

// output records what the server logs. Write never blocks the server:
// it appends under a mutex and wakes a waiter through a channel of
// capacity 1; waiters re-scan with a deadline.
type output struct {
	mu     sync.Mutex
	text   strings.Builder
	notify chan struct{}
}

func newOutput() *output { return &output{notify: make(chan struct{}, 1)} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.text.Write(p)
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.text.String()
}

// waitFor waits until the log contains s, and returns the log.
func (o *output) waitFor(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		if out := o.String(); strings.Contains(out, s) {
			return out
		}
		select {
		case <-o.notify:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("waited %v for %q in the log:\n%s", wait, s, o.String())
		}
	}
}

// stuckWriter stands for a pipe that nobody reads: each Write blocks
// until the test is over, then goes on to the output.
type stuckWriter struct {
	to       *output
	released chan struct{}
}

func newStuckWriter(t *testing.T) *stuckWriter {
	w := &stuckWriter{to: newOutput(), released: make(chan struct{})}
	t.Cleanup(w.release)
	return w
}

func (w *stuckWriter) release() {
	select {
	case <-w.released:
	default:
		close(w.released)
	}
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	<-w.released
	return w.to.Write(p)
}
