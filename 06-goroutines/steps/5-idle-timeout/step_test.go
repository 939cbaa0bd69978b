package main

// Step 5's tests run its server in this process, on a free port.

import (
	"context"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serveWith returns a function that runs the step's server with
// -max-conns maxConns and -idle-timeout idle.
func serveWith(maxConns int, idle time.Duration) func(ctx context.Context, stdout io.Writer) error {
	return func(ctx context.Context, stdout io.Writer) error {
		srv := &server{idle: idle, grace: wait, log: log.New(stdout, "", 0), conns: make(map[*net.TCPConn]struct{})}
		return srv.serve(ctx, "127.0.0.1:0", maxConns)
	}
}

// The fix for step 4's pitfall: a client silent for -idle-timeout is
// told so and closed cleanly, and its slot goes to the next client.
func TestASilentClientIsToldAndClosed(t *testing.T) {
	srv := start(t, serveWith(1, 100*time.Millisecond))
	silent := dialGreeted(t, srv.addr)
	next := dial(t, srv.addr)

	rest, err := io.ReadAll(silent)
	require.NoError(t, err, "want a clean end of stream (FIN), not a reset")
	assert.Equal(t, "bye: idle for 100ms, closing\n", string(rest))
	silent.Close()
	assert.Equal(t, greeting, readLine(t, next))
	echo(t, next, "my turn\n")
}

// The pitfall, fixed in step 6. The idle timeout is a read deadline. A
// client that sends and never reads fills the buffers on both sides;
// then the server's goroutine waits in Write, where no read deadline
// reaches it, and it keeps its slot. With -max-conns 1 the next client
// is not served, long after the idle timeout (200 ms) has passed.
func TestAClientThatNeverReadsHoldsItsSlot(t *testing.T) {
	srv := start(t, serveWith(1, 200*time.Millisecond))
	deaf := dialGreeted(t, srv.addr)
	flood(t, deaf)
	next := dial(t, srv.addr)
	assertNothingArrives(t, next, time.Second, "five idle timeouts later, the next client still waits")
}

// flood writes to conn without ever reading, until a write fails (the
// server cut it off, or the test ended and closed conn). Once the
// buffers on both sides are full, the server's Write has to wait.
func flood(t *testing.T, conn net.Conn) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	go func() {
		defer close(done)
		chunk := make([]byte, 64<<10)
		for {
			if _, err := conn.Write(chunk); err != nil {
				return
			}
		}
	}()
}

// ---- helpers: the step's server run in this process ----

// wait bounds every blocking step of a test, so a broken step fails the
// test instead of hanging it.
const wait = 5 * time.Second

// running is the step's server, started by a test in this process.
type running struct {
	addr string
	out  *lines
	stop context.CancelFunc // what Ctrl+C does
	done chan error
}

// start runs serve with a context and a stdout of its own, and waits for
// its first line, the address it listens on. The server is stopped, and
// waited for, when the test ends.
func start(t *testing.T, serve func(ctx context.Context, stdout io.Writer) error) *running {
	t.Helper()
	out := newLines()
	return startWriting(t, out, out, serve)
}

// startWriting is start with the server's stdout given, which must pass
// at least the first line on to out.
func startWriting(t *testing.T, stdout io.Writer, out *lines, serve func(ctx context.Context, stdout io.Writer) error) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &running{out: out, stop: cancel, done: make(chan error, 1)}
	go func() { srv.done <- serve(ctx, stdout) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(2 * wait):
			t.Error("the server did not stop after cancel")
		}
	})
	first := srv.out.next(t)
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	srv.addr = addr
	return srv
}

// dial connects with a deadline on every later read and write, and
// closes the connection when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialGreeted connects and reads the greeting.
func dialGreeted(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn := dial(t, addr)
	require.Equal(t, greeting, readLine(t, conn))
	return conn
}

// readLine reads one line byte by byte, so that nothing after it is
// swallowed by a buffer.
func readLine(t *testing.T, conn net.Conn) string {
	t.Helper()
	var line []byte
	b := make([]byte, 1)
	for {
		_, err := conn.Read(b)
		require.NoError(t, err, "reading a line, got %q so far", line)
		line = append(line, b[0])
		if b[0] == '\n' {
			return string(line)
		}
	}
}

// echo sends msg and reads the reply, "OK..." and msg, in one piece on
// loopback for a message this short.
func echo(t *testing.T, conn net.Conn, msg string) {
	t.Helper()
	_, err := io.WriteString(conn, msg)
	require.NoError(t, err)
	reply := make([]byte, len("OK...")+len(msg))
	_, err = io.ReadFull(conn, reply)
	require.NoError(t, err)
	require.Equal(t, "OK..."+msg, string(reply))
}

// assertNothingArrives checks that conn receives nothing for d: a short
// deadline is how a test says "nothing comes", and why it waits.
func assertNothingArrives(t *testing.T, conn net.Conn, d time.Duration, why string) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(d)))
	n, err := conn.Read(make([]byte, 1))
	assert.Zero(t, n, why)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, why)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
}

// lines is an io.Writer that keeps each complete line, so a test can wait
// for a line instead of sleeping. It never blocks the writer and never
// drops a line: Write appends under a mutex and wakes a waiter through a
// notify channel of capacity 1; waiters scan again on each wake-up and
// every 10 ms.
type lines struct {
	mu     sync.Mutex
	part   string
	got    []string
	read   int
	notify chan struct{}
}

func newLines() *lines { return &lines{notify: make(chan struct{}, 1)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.part += string(p)
	for {
		line, rest, ok := strings.Cut(l.part, "\n")
		if !ok {
			break
		}
		l.got, l.part = append(l.got, line), rest
	}
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

// all returns every complete line so far.
func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

// next returns the next line in order.
func (l *lines) next(t *testing.T) string { t.Helper(); return l.waitFor(t, "") }

// waitFor returns the next line that contains s, skipping those before it.
func (l *lines) waitFor(t *testing.T, s string) string {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	rescan := time.NewTicker(10 * time.Millisecond)
	defer rescan.Stop()
	for {
		l.mu.Lock()
		for l.read < len(l.got) {
			line := l.got[l.read]
			l.read++
			if strings.Contains(line, s) {
				l.mu.Unlock()
				return line
			}
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-rescan.C:
		case <-deadline.C:
			t.Fatalf("no line containing %q within %v; so far: %q", s, wait, l.all())
		}
	}
}
