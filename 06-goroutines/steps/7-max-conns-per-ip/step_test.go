package main

// Step 7's tests run its server in this process, on a free port.

import (
	"context"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newServer is the server main builds, logging to stdout.
func newServer(stdout io.Writer, maxPerIP int) *server {
	return &server{idle: wait, grace: 200 * time.Millisecond, maxPerIP: maxPerIP,
		log: log.New(stdout, "", 0), conns: make(map[*net.TCPConn]struct{}), perIP: make(map[netip.Addr]int)}
}

// The fix for step 6's pitfall: with -max-conns 3 -max-conns-per-ip 2,
// the tricklers from 127.0.0.1 get two slots. The third is told why and
// closed with a FIN, and a client from 127.0.0.2 is served.
func TestOneAddressCannotTakeEverySlot(t *testing.T) {
	other := secondLoopbackAddress(t)
	srv := start(t, func(ctx context.Context, stdout io.Writer) error {
		return newServer(stdout, 2).serve(ctx, "127.0.0.1:0", 3)
	})
	for i := 0; i < 2; i++ {
		trickle(t, dialGreeted(t, srv.addr), 100*time.Millisecond)
	}
	third := dial(t, srv.addr)
	rest, err := io.ReadAll(third)
	require.NoError(t, err, "want a clean end of stream (FIN), not a reset")
	assert.Equal(t, "bye: too many connections from your address (limit 2), closing\n", string(rest))
	third.Close()
	srv.out.waitFor(t, third.LocalAddr().String()+" turned away")

	elsewhere := dialFrom(t, other, srv.addr)
	assert.Equal(t, greeting, readLine(t, elsewhere))
	echo(t, elsewhere, "served?\n")
}

// The pitfall, fixed in step 8. The server logs straight to stdout. When
// stdout is a pipe that nobody reads (a paused `| less`), a write to it
// blocks, and so does the goroutine that logs: here the first client is
// never greeted, because its goroutine is stuck logging "connected", and
// Ctrl+C does not stop the server either.
func TestAStdoutNobodyReadsStopsTheServer(t *testing.T) {
	out := newLines()
	stdout := &stuckWriter{out: out, pass: 1, release: make(chan struct{})}
	srv := startWriting(t, stdout, out, func(ctx context.Context, stdout io.Writer) error {
		return newServer(stdout, 2).serve(ctx, "127.0.0.1:0", 3)
	})
	t.Cleanup(stdout.unblock) // runs before start's cleanup waits

	conn := dial(t, srv.addr)
	assertNothingArrives(t, conn, 300*time.Millisecond, "the client is never greeted")
	srv.stop()
	select {
	case <-srv.done:
		t.Fatal("the server stopped, though its log could not be written")
	case <-time.After(500 * time.Millisecond): // -grace is 200 ms
	}
}

// stuckWriter passes its first pass lines on to out, then blocks every
// Write until unblock is called: a pipe whose reader has stopped.
type stuckWriter struct {
	out     io.Writer
	pass    int
	release chan struct{}
	once    sync.Once
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	if w.pass > 0 {
		w.pass--
		return w.out.Write(p)
	}
	<-w.release
	return w.out.Write(p)
}

func (w *stuckWriter) unblock() { w.once.Do(func() { close(w.release) }) }

// trickle sends conn one byte every period, and reads the replies,
// until the test ends.
func trickle(t *testing.T, conn net.Conn, period time.Duration) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	go func() {
		defer close(done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		reply := make([]byte, len("OK..."+"."))
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte(".")); err != nil {
				return
			}
			if _, err := io.ReadFull(conn, reply); err != nil {
				return
			}
		}
	}()
}

// secondLoopbackAddress returns 127.0.0.2, for a client that must not
// share 127.0.0.1 with the others, or skips the test where a program
// cannot use it.
func secondLoopbackAddress(t *testing.T) net.IP {
	t.Helper()
	ip := net.IPv4(127, 0, 0, 2)
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: ip})
	if err != nil {
		t.Skipf("cannot use a second loopback address, 127.0.0.2 (macOS has only 127.0.0.1 unless an alias is added): %v", err)
	}
	ln.Close()
	return ip
}

// dialFrom is dial from the local address ip.
func dialFrom(t *testing.T, ip net.IP, addr string) net.Conn {
	t.Helper()
	dialer := net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: ip}}
	conn, err := dialer.Dial("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
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
