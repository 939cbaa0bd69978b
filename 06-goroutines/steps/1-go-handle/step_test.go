package main

// Step 1's tests run its acceptLoop in this process, on a listener of
// their own: nothing to build, and the test sees every line it logs.

import (
	"io"
	"log"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The idea: each client has a goroutine of its own, so none waits for
// another to leave (in 05-loop, the second client did).
func TestEveryClientIsAnsweredWhileTheOthersAreConnected(t *testing.T) {
	ln, _ := serveHere(t, io.Discard)
	conns := make([]net.Conn, 3)
	for i := range conns {
		conns[i] = dialGreeted(t, ln.Addr().String())
	}
	for i, conn := range conns {
		echo(t, conn, strings.Repeat("hi ", i+1)+"\n")
	}
}

// The pitfall, fixed in step 2. Stopping the server means closing its
// listener: that ends the accept loop, and nothing else. The goroutines
// talk on with their clients, nobody tells the clients, and nobody
// waits for the goroutines. (Ctrl+C on the real program is no better: it
// kills the process, and every client is cut off mid-conversation,
// without a word.)
func TestClosingTheListenerLeavesTheGoroutinesTalking(t *testing.T) {
	ln, loop := serveHere(t, io.Discard)
	conn := dialGreeted(t, ln.Addr().String())
	require.NoError(t, ln.Close())
	select {
	case err := <-loop:
		assert.ErrorIs(t, err, net.ErrClosed, "the accept loop ended")
	case <-time.After(wait):
		t.Fatal("the accept loop did not end when its listener closed")
	}
	echo(t, conn, "still there?\n") // yes: its goroutine never heard
}

// The README's session with step 1: two clients at once.
func TestReadmeStepOneTranscript(t *testing.T) {
	out := newLines()
	ln, _ := serveHere(t, out)
	echo(t, dialGreeted(t, ln.Addr().String()), "hello\n")
	echo(t, dialGreeted(t, ln.Addr().String()), "hello too\n")
	got := append([]string{"listening on " + ln.Addr().String()}, out.all()...)

	// The README's session, "$ " lines and port numbers aside.
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "<!-- transcript: step-1 -->\n```console\n")
	require.True(t, ok, "README.md has no step-1 transcript")
	block, _, _ := strings.Cut(after, "```")
	var want []string
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "$ ") {
			want = append(want, line)
		}
	}
	ports := regexp.MustCompile(`127\.0\.0\.1:\d+`)
	assert.Equal(t, ports.ReplaceAllString(strings.Join(want, "\n"), "127.0.0.1:PORT"),
		ports.ReplaceAllString(strings.Join(got, "\n"), "127.0.0.1:PORT"))
}

// ---- helpers ----

// wait bounds every blocking step of a test, so a broken step fails the
// test instead of hanging it.
const wait = 5 * time.Second

const greeting = "welcome to 06-goroutines: every message you send comes back after OK...\n"

// serveHere runs acceptLoop on a free port, logging to stdout, and
// returns the listener and what acceptLoop returns. The test's end closes
// the listener.
func serveHere(t *testing.T, stdout io.Writer) (net.Listener, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	loop := make(chan error, 1)
	go func() { loop <- acceptLoop(ln, log.New(stdout, "", 0)) }()
	return ln, loop
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
