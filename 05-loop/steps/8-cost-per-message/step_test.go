package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Step 8's tests run its acceptLoop in this process, on listeners of
// their own; the keep-alive test runs the step as a program, for the
// listener main makes.

// The fix for step 7's pitfall: the server listens with
// net.ListenConfig{KeepAlive: -1}, so no accepted connection has a
// keep-alive timer, and each costs one setsockopt (TCP_NODELAY), not
// five.
func TestAcceptedConnectionsHaveKeepAliveOff(t *testing.T) {
	skipUnlessLinux(t)
	c := startProcess(t).dial(t)
	c.expect(greeting)
	assert.False(t, keepAliveTimer(t, c.conn), "a keep-alive timer on the server's side of the connection")
}

// The fix for step 7's pitfall: the deadlines are set once, both with
// one SetDeadline, and 100 messages within the idle timeout move
// neither.
func TestDeadlinesMoveOnlyWhenTheyPass(t *testing.T) {
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go acceptLoop(ctx, ln, config{idle: time.Minute, grace: time.Second}, io.Discard)
	c := dial(t, ln)
	c.expect(greeting)
	server := ln.next(t)
	for i := 0; i < 100; i++ {
		c.send("ping\n")
		c.expect("OK...ping\n")
	}
	assert.Equal(t, int64(2), server.deadlines.Load(), "deadlines moved for 100 messages")
}

// The fix for step 7's pitfall: Read takes up to 16 KiB, so a 16 KiB
// message sent at once comes back in one chunk. (The kernel may hand it
// over in two parts, hence at most 2.)
func TestA16KiBMessageComesBackInOneChunk(t *testing.T) {
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go acceptLoop(ctx, ln, config{idle: wait, grace: time.Second}, io.Discard)
	c := dial(t, ln)
	c.expect(greeting)
	assert.LessOrEqual(t, c.chunksFor16KiB(), 2)
	c.send("and a short one, as before\n")
	c.expect("OK...and a short one, as before\n")
}

// The promise of step 3 holds: a client that talks through several idle
// timeouts is served throughout, and once silent it is told and closed
// no sooner than -idle-timeout after its last message.
func TestATalkingClientOutlivesTheIdleTimeoutAndIsClosedOnceSilent(t *testing.T) {
	const idle = 400 * time.Millisecond
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newOutput()
	go acceptLoop(ctx, ln, config{idle: idle, grace: time.Second}, out)
	c := dial(t, ln)
	c.expect(greeting)
	var last time.Time
	for begin := time.Now(); time.Since(begin) < 3*idle; {
		<-time.After(idle / 8) // a message now and then: never idle
		last = time.Now()
		c.send("still here\n")
		c.expect("OK...still here\n")
	}
	c.expect("bye: idle for 400ms, closing\n")
	assert.GreaterOrEqual(t, time.Since(last), idle, "closed only after -idle-timeout of silence")
	out.waitFor(t, "client "+c.conn.LocalAddr().String()+" idle, closed\n")
}

// The promise of step 6 holds: a client that trickles a byte every 20 ms
// is never idle, and is closed at the end of its turn all the same. The
// turn is three idle timeouts long, so the read deadline passes, and
// moves, before the turn ends.
func TestATricklingClientIsStillClosedAtTheEndOfItsTurn(t *testing.T) {
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newOutput()
	go acceptLoop(ctx, ln, config{idle: 200 * time.Millisecond, turn: 600 * time.Millisecond, grace: time.Second}, out)
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
			assert.Equal(t, "bye: turn over after 600ms, closing\n", string(reply)+rest)
			break
		}
	}
	require.NoError(t, trickler.conn.Close())
	next.expect(greeting)
	out.waitFor(t, "client "+trickler.conn.LocalAddr().String()+" turn over, closed\n")
}

// The promise of step 3 holds for replies too: a client that talked for
// a while (so the write deadline set at the start has passed) and then
// stops reading is cut off, no sooner than -idle-timeout after it
// stopped, and the next client is served.
func TestAClientThatStopsReadingIsStillCutOff(t *testing.T) {
	const idle = 300 * time.Millisecond
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newOutput()
	go acceptLoop(ctx, ln, config{idle: idle, grace: time.Second}, out)
	c := dial(t, ln)
	c.expect(greeting)
	for begin := time.Now(); time.Since(begin) < 2*idle; {
		<-time.After(idle / 6)
		c.send("still reading\n")
		c.expect("OK...still reading\n")
	}

	// Now send without reading, until the replies fill every buffer and
	// the server's Write blocks.
	stopped := time.Now()
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			c.conn.SetWriteDeadline(time.Now().Add(wait))
			if _, err := c.conn.Write(chunk); err != nil {
				return // the server closed the connection, or the test ended
			}
		}
	}()
	next := dial(t, ln)
	next.expect(greeting)
	out.waitFor(t, "client "+c.conn.LocalAddr().String()+" stopped reading, closed\n")
	assert.GreaterOrEqual(t, time.Since(stopped), idle, "cut off only after -idle-timeout of unread replies")
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

// next returns the next connection the server accepted.
func (l *countingListener) next(t *testing.T) *countingConn {
	t.Helper()
	select {
	case c := <-l.accepted:
		return c
	case <-time.After(wait):
		t.Fatal("the server accepted no connection")
		return nil
	}
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

// countingConn counts the server's Reads, and how often it moves a
// deadline (SetDeadline moves two).
type countingConn struct {
	net.Conn
	reads     atomic.Int64
	deadlines atomic.Int64
	over      chan struct{}
}

func (c *countingConn) SetDeadline(t time.Time) error {
	c.deadlines.Add(2)
	return c.Conn.SetDeadline(t)
}

func (c *countingConn) SetReadDeadline(t time.Time) error {
	c.deadlines.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.deadlines.Add(1)
	return c.Conn.SetWriteDeadline(t)
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

// chunksFor16KiB sends 16 KiB in one write and counts the chunks of the
// reply: each chunk the server read comes back after its own "OK...".
func (c *client) chunksFor16KiB() int {
	c.t.Helper()
	msg := strings.Repeat("x", 16<<10)
	c.send(msg)
	var reply []byte
	buf := make([]byte, 64<<10)
	for strings.Count(string(reply), "x") < len(msg) {
		n, err := c.r.Read(buf)
		require.NoError(c.t, err, "reply so far: %d bytes", len(reply))
		reply = append(reply, buf[:n]...)
	}
	return strings.Count(string(reply), "OK...")
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

// process is the step built and running as a program of its own, for
// what main does and acceptLoop does not: here, the listener.
type process struct {
	addr string
}

// startProcess builds this step into a temporary directory and runs it
// on a free port until the test ends.
func startProcess(t *testing.T) *process {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "step")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)

	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stdout, w := io.Pipe()
	cmd.Stdout = w
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := bufio.NewScanner(stdout)
	addr := make(chan string, 1)
	go func() {
		if lines.Scan() {
			addr <- strings.TrimPrefix(lines.Text(), "listening on ")
		}
		close(addr)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		require.NotEmpty(t, a, "the step printed no address")
		return &process{addr: a}
	case <-time.After(wait):
		t.Fatal("the step printed no address")
		return nil
	}
}

func (p *process) dial(t *testing.T) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", p.addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func skipUnlessLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reads the kernel's table of TCP sockets, /proc/net/tcp, which is Linux's")
	}
}

// keepAliveTimer reports whether the kernel keeps a keep-alive timer on
// the server's side of conn, a connection to 127.0.0.1. Linux lists each
// TCP socket in /proc/net/tcp: its local and remote address and port in
// hex, its state, its queues, then "tr:when", where tr is 2 while a
// keep-alive timer is set and 0 while no timer is. It is 1 while data
// sent waits for its ACK, as the greeting may still: wait for that.
func keepAliveTimer(t *testing.T, conn net.Conn) bool {
	t.Helper()
	server := fmt.Sprintf(":%04X", conn.RemoteAddr().(*net.TCPAddr).Port)
	client := fmt.Sprintf(":%04X", conn.LocalAddr().(*net.TCPAddr).Port)
	deadline := time.After(wait)
	for {
		table, err := os.ReadFile("/proc/net/tcp")
		require.NoError(t, err)
		for _, line := range strings.Split(string(table), "\n") {
			f := strings.Fields(line)
			if len(f) > 5 && strings.HasSuffix(f[1], server) && strings.HasSuffix(f[2], client) {
				if tr, _, _ := strings.Cut(f[5], ":"); tr != "01" {
					return tr == "02"
				}
			}
		}
		select {
		case <-deadline:
			t.Fatalf("the server's side of %v did not settle in /proc/net/tcp within %v", conn.LocalAddr(), wait)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
