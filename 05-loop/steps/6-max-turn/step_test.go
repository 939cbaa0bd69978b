package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Step 6's tests run its acceptLoop in this process, on listeners of
// their own.

func TestTricklingClientIsClosedAtTheEndOfItsTurn(t *testing.T) {
	// A byte every 20 ms keeps an idle timeout of 1 s from ever firing:
	// only the end of the turn can close this client.
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newOutput()
	go acceptLoop(ctx, ln, config{idle: time.Second, turn: 300 * time.Millisecond, grace: time.Second}, out)
	trickler := dial(t, ln)
	trickler.expect(greeting)
	next := dial(t, ln)

	// Trickle until the server says goodbye: 200 bytes (4 s) at most.
	for i := 0; i < 200; i++ {
		<-time.After(20 * time.Millisecond)
		trickler.send("x")
		reply := make([]byte, len("OK...x"))
		_, err := io.ReadFull(trickler.r, reply)
		require.NoError(t, err)
		if string(reply) != "OK...x" {
			// Not a reply: the start of the goodbye.
			rest, err := trickler.r.ReadString('\n')
			require.NoError(t, err)
			assert.Equal(t, "bye: turn over after 300ms, closing\n", string(reply)+rest)
			break
		}
	}
	require.NoError(t, trickler.conn.Close())
	next.expect(greeting)
	out.waitFor(t, "client "+trickler.conn.LocalAddr().String()+" turn over, closed\n")
}

func TestStuckLogStopsTheServer(t *testing.T) {
	// The pitfall the next step fixes. The log is a pipe that nobody
	// reads, a paused `| less`: every write to it blocks. The server
	// blocks in its first log line, and nobody is greeted. The test
	// watches for 300 ms.
	ln := listen(t)
	stuck := newStuckWriter(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go acceptLoop(ctx, ln, config{idle: wait, grace: time.Second}, stuck)
	c := dial(t, ln)
	assert.True(t, c.hearsNothingFor(300*time.Millisecond), "the client was greeted while the log was stuck")
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

func (c *client) send(msg string) {
	c.t.Helper()
	_, err := io.WriteString(c.conn, msg)
	require.NoError(c.t, err)
}

// hearsNothingFor reports whether nothing arrives for d. Silence cannot
// be proven, only watched for a while.
func (c *client) hearsNothingFor(d time.Duration) bool {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetReadDeadline(time.Now().Add(d)))
	defer c.conn.SetReadDeadline(time.Now().Add(wait))
	_, err := c.r.Peek(1)
	return errors.Is(err, os.ErrDeadlineExceeded)
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
