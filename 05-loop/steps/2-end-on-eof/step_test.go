package main

import (
	"bufio"
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

// Step 2's tests run its acceptLoop in this process, on a listener whose
// connections count their Reads.

func TestLoopEndsWhenTheClientLeaves(t *testing.T) {
	ln := listen(t)
	out := newOutput()
	go acceptLoop(ln, out)
	c := dial(t, ln)
	c.expect(greeting)
	conn := <-ln.accepted
	c.send("hello\n")
	c.expect("OK...hello\n")
	require.NoError(t, c.conn.Close())

	// The next client is greeted, so the loop for the first has ended,
	// after exactly two Reads: "hello\n", then io.EOF. It did not spin.
	dial(t, ln).expect(greeting)
	assert.Equal(t, int64(2), conn.reads.Load())
	out.waitFor(t, "client "+c.conn.LocalAddr().String()+" left\n")
}

func TestSecondClientWaitsUntilTheFirstLeaves(t *testing.T) {
	// This is how a loop serves: one client at a time. Lesson 06 serves
	// them all at once; here it is shown, and left as it is.
	ln := listen(t)
	go acceptLoop(ln, newOutput())
	first := dial(t, ln)
	first.expect(greeting)
	second := dial(t, ln)
	second.send("sent while waiting\n")
	assert.True(t, second.hearsNothingFor(100*time.Millisecond), "the second client was greeted while the first was served")

	require.NoError(t, first.conn.Close())
	second.expect(greeting)
	second.expect("OK...sent while waiting\n")
}

func TestSilentClientHoldsUpEveryoneBehindIt(t *testing.T) {
	// The pitfall the next step fixes: a client that connects and says
	// nothing is served forever. The test watches for 300 ms.
	ln := listen(t)
	go acceptLoop(ln, newOutput())
	silent := dial(t, ln)
	silent.expect(greeting)
	next := dial(t, ln)
	assert.True(t, next.hearsNothingFor(300*time.Millisecond), "the next client was greeted while a silent one was connected")
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
