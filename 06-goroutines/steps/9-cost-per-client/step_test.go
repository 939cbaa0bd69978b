package main

// Step 9's tests run its server in this process, on a free port.

import (
	"context"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fix for step 8's pitfall: a read that fills the 1 KB buffer makes
// the next one borrow a 16 KiB buffer, so a 16 KiB message comes back in
// two chunks, not sixteen. (The kernel may hand the message over in two
// parts, hence at most 3.)
func TestA16KiBMessageComesBackInTwoChunks(t *testing.T) {
	srv := start(t, func(ctx context.Context, stdout io.Writer) error {
		return newServer(stdout, wait).serve(ctx, "127.0.0.1:0", 10)
	})
	conn := dialGreeted(t, srv.addr)
	assert.LessOrEqual(t, chunksFor16KiB(t, conn), 3)
	echo(t, conn, "and a short one, as before\n")
}

// The fix for step 8's pitfall: the lines waiting in the queue together
// go out in one Write.
func TestTheLogWritesTheLinesWaitingTogetherInOneWrite(t *testing.T) {
	out := &recordingWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	q := newLogQueue(out)
	q.Write([]byte("first\n"))
	<-out.entered // the writer holds "first" while the next lines queue up
	q.Write([]byte("second\n"))
	q.Write([]byte("third\n"))
	close(out.release)
	q.close(time.Now().Add(wait))
	assert.Equal(t, []string{"first\n", "second\nthird\n"}, out.writes)
}

// A line waits a moment (logLinger, 5 ms) for the lines that follow it,
// so that a crowd of clients coming and going costs a few writes, not
// two each. Here the moment is an hour, so that the test does not race
// the clock, and close ends it at once.
func TestALineWaitsForTheNextOnesToShareItsWrite(t *testing.T) {
	out := &recordingWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	close(out.release)
	q := &logQueue{out: out, lines: make(chan []byte, logQueueLines),
		stop: make(chan struct{}), done: make(chan struct{}), linger: time.Hour}
	go q.writeOut()

	q.Write([]byte("first\n"))
	// Once the queue is empty, the writer holds "first" and lingers;
	// without the linger it would write "first" alone right away.
	for deadline := time.Now().Add(wait); len(q.lines) > 0; {
		require.True(t, time.Now().Before(deadline), "the writer never took the first line")
		runtime.Gosched()
	}
	q.Write([]byte("second\n"))
	q.close(time.Now().Add(wait))
	select {
	case <-q.done:
	case <-time.After(wait):
		t.Fatal("close did not end the linger")
	}
	assert.Equal(t, []string{"first\nsecond\n"}, out.writes)
}

// The deadlines move only when they pass, and the promise of step 5
// holds: a client that talks through several idle timeouts is served
// throughout, and once silent it is closed no sooner than -idle-timeout
// after its last message.
func TestATalkingClientOutlivesTheIdleTimeoutAndIsClosedOnceSilent(t *testing.T) {
	const idle = 400 * time.Millisecond
	srv := start(t, func(ctx context.Context, stdout io.Writer) error {
		return newServer(stdout, idle).serve(ctx, "127.0.0.1:0", 10)
	})
	conn := dialGreeted(t, srv.addr)
	var last time.Time
	for begin := time.Now(); time.Since(begin) < 3*idle; {
		time.Sleep(idle / 8) // a message now and then: never idle
		last = time.Now()
		echo(t, conn, "still here\n")
	}
	rest, err := io.ReadAll(conn) // until the server closes
	require.NoError(t, err, "want a clean end of stream (FIN), not a reset")
	assert.Equal(t, "bye: idle for 400ms, closing\n", string(rest))
	assert.GreaterOrEqual(t, time.Since(last), idle, "closed only after -idle-timeout of silence")
}

// newServer is the server main builds, logging to stdout.
func newServer(stdout io.Writer, idle time.Duration) *server {
	return &server{idle: idle, grace: wait, maxPerIP: 100, stdout: stdout,
		conns: make(map[*net.TCPConn]struct{}), perIP: make(map[netip.Addr]int)}
}

// chunksFor16KiB sends 16 KiB in one write and counts the chunks of the
// reply: each chunk the server read comes back after its own "OK...".
func chunksFor16KiB(t *testing.T, conn net.Conn) int {
	t.Helper()
	msg := strings.Repeat("x", 16<<10)
	_, err := io.WriteString(conn, msg)
	require.NoError(t, err)
	var reply []byte
	buf := make([]byte, 64<<10)
	for strings.Count(string(reply), "x") < len(msg) {
		n, err := conn.Read(buf)
		require.NoError(t, err)
		reply = append(reply, buf[:n]...)
	}
	return strings.Count(string(reply), "OK...")
}

// recordingWriter records each Write; the first one waits for release.
type recordingWriter struct {
	entered chan struct{}
	release chan struct{}
	writes  []string
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	if len(w.writes) == 0 {
		w.entered <- struct{}{}
		<-w.release
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
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
