package main

// Step 2's tests run its server in this process, on a free port, and
// cancel its context where a user would press Ctrl+C.

import (
	"context"
	"io"
	"log"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newServer is the server main builds, logging to stdout.
func newServer(stdout io.Writer, grace time.Duration) *server {
	return &server{grace: grace, log: log.New(stdout, "", 0), conns: make(map[*net.TCPConn]struct{})}
}

// serveWith returns a function that runs the step's server with grace.
func serveWith(grace time.Duration) func(ctx context.Context, stdout io.Writer) error {
	return func(ctx context.Context, stdout io.Writer) error {
		return newServer(stdout, grace).serve(ctx, "127.0.0.1:0")
	}
}

// The fix for step 1's pitfall: on Ctrl+C every client is told, the
// connection ends with a clean EOF (FIN, not a reset), and the server
// waits for every goroutine before it returns.
func TestCtrlCSaysGoodbyeToEveryClientAndWaitsForThem(t *testing.T) {
	srv := start(t, serveWith(wait))
	quiet := dialGreeted(t, srv.addr)
	talking := dialGreeted(t, srv.addr)
	echo(t, talking, "one\n")
	srv.stop()
	for _, conn := range []net.Conn{quiet, talking} {
		rest, err := io.ReadAll(conn)
		require.NoError(t, err, "want a clean end of stream (FIN), not a reset")
		assert.Equal(t, "bye: server shutting down\n", string(rest))
		conn.Close()
	}
	require.NoError(t, srv.wait(t))
	log := srv.out.all()
	assert.Equal(t, "stopped", log[len(log)-1], "serve returned after the goroutines: %q", log)
	assert.Equal(t, 2, count(log, "closed at shutdown"), "%q", log)
}

// A client that never reads cannot hold the shutdown for more than
// -grace: its goroutine is stuck in Write, so its connection is closed.
func TestShutdownClosesWhatIsStillOpenAfterTheGracePeriod(t *testing.T) {
	srv := start(t, serveWith(200*time.Millisecond))
	deaf := dialGreeted(t, srv.addr)
	fillUntilStuckWriting(t, deaf)
	srv.stop()
	require.NoError(t, srv.wait(t))
	srv.out.waitFor(t, "grace period over, closing 1 connections")
	srv.out.waitFor(t, "cut off at shutdown")
}

// The pitfall, fixed in step 3: every client that connects gets a
// goroutine and a file descriptor, however many come. Nothing in the
// server says "enough"; a flood of them runs the process out of
// descriptors or memory.
func TestEveryClientOfAFloodGetsAGoroutine(t *testing.T) {
	srv := start(t, serveWith(wait))
	const flood = 200
	for i := 0; i < flood; i++ {
		dialGreeted(t, srv.addr) // and each stays connected
	}
	assert.Equal(t, flood, count(srv.out.all(), "connected"), "all %d are being served at once", flood)
}

// fillUntilStuckWriting writes to conn without reading until the
// server's goroutine is parked in a Write (the goroutines' stacks say
// so): the buffers on both sides are full, and nothing it writes now can
// get out.
func fillUntilStuckWriting(t *testing.T, conn net.Conn) {
	t.Helper()
	chunk := make([]byte, 64<<10)
	deadline := time.Now().Add(wait)
	for !parkedIn(".(*server).send(") {
		require.True(t, time.Now().Before(deadline), "the server never got stuck writing")
		require.NoError(t, conn.SetWriteDeadline(time.Now().Add(50*time.Millisecond)))
		if _, err := conn.Write(chunk); err != nil {
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		}
	}
}

// parkedIn reports whether a goroutine is, right now, inside call (as
// stack traces name it) and parked there, waiting for its socket.
func parkedIn(call string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, call) && strings.Contains(g, "internal/poll.runtime_pollWait(") {
			return true
		}
	}
	return false
}

// count returns how many of lines contain s.
func count(lines []string, s string) int {
	n := 0
	for _, line := range lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
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

// wait returns what serve returned, failing the test if it runs on.
func (s *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for Cleanup
		return err
	case <-time.After(2 * wait):
		t.Fatal("the server did not return")
		return nil
	}
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
