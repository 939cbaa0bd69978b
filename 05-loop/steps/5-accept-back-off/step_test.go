package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Step 5's tests run its acceptLoop in this process, on listeners of
// their own.

func TestAcceptBacksOffAndRecoversFromTooManyOpenFiles(t *testing.T) {
	ln := listen(t)
	// A client waits in the backlog while three Accepts fail.
	c := dial(t, ln)
	fake := &failingListener{Listener: ln, errno: syscall.EMFILE, fails: 3}
	out := newOutput()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go acceptLoop(ctx, fake, config{idle: wait, grace: time.Second}, out)

	// Once Accept works again, the waiting client is served.
	c.expect(greeting)
	c.send("hello\n")
	c.expect("OK...hello\n")
	log := out.waitFor(t, "accepting again after 3 failed attempts\n")
	assert.Equal(t, 1, strings.Count(log, "accept failed, retrying with back-off: "), "one line for the streak:\n%s", log)
	calls := fake.times()
	require.GreaterOrEqual(t, len(calls), 4, "three failed Accepts, then the real one")
	for i, pause := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
		assert.GreaterOrEqual(t, calls[i+1].Sub(calls[i]), pause, "pause after failure %d", i+1)
	}
}

func TestTricklingClientHoldsUpTheQueue(t *testing.T) {
	// The pitfall the next step fixes. The idle timeout starts again with
	// every byte, so a client that sends one now and then is never idle.
	// This one sends a byte every 20 ms for 900 ms, three times the idle
	// timeout, and the next client waits all that time.
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go acceptLoop(ctx, ln, config{idle: 300 * time.Millisecond, grace: time.Second}, newOutput())
	trickler := dial(t, ln)
	trickler.expect(greeting)
	next := dial(t, ln)
	greeted := make(chan time.Time, 1)
	go func() {
		if _, err := next.r.ReadString('\n'); err == nil {
			greeted <- time.Now()
		}
	}()
	for i := 0; i < 45; i++ {
		<-time.After(20 * time.Millisecond)
		trickler.send("x")
		trickler.expectBytes("OK...x")
	}
	lastByte := time.Now()
	select {
	case at := <-greeted:
		t.Fatalf("the next client was greeted %v before the trickle ended", lastByte.Sub(at))
	default:
	}
	require.NoError(t, trickler.conn.Close())
	select {
	case <-greeted:
	case <-time.After(wait):
		t.Fatal("the next client was never greeted")
	}
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

// expectBytes reads exactly len(want) bytes and checks them.
func (c *client) expectBytes(want string) {
	c.t.Helper()
	got := make([]byte, len(want))
	_, err := io.ReadFull(c.r, got)
	require.NoError(c.t, err, "waiting for %q", want)
	require.Equal(c.t, want, string(got))
}

func (c *client) send(msg string) {
	c.t.Helper()
	_, err := io.WriteString(c.conn, msg)
	require.NoError(c.t, err)
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

// failingListener fails its first Accepts with errno, the way a kernel
// reports it, then accepts for real. It notes when each Accept was
// called, so that a test can measure the pauses between them.
type failingListener struct {
	net.Listener
	errno syscall.Errno
	mu    sync.Mutex
	fails int
	calls []time.Time
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept", l.errno)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func (l *failingListener) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.calls...)
}
