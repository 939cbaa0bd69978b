//go:build exercise || solution

package main

import (
	"context"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test, so a broken server fails
// the test instead of hanging it.
const wait = 5 * time.Second

func TestSecondClientIsToldTheServerIsBusy(t *testing.T) {
	srv := startServer(t)
	first := dial(t, srv.addr)
	defer first.Close()
	srv.out.next(t) // "client connected from ...": the first is in

	second, err := net.DialTimeout("tcp", srv.addr, wait)
	require.NoError(t, err, "the second client must be accepted, not refused by the kernel")
	defer second.Close()
	require.NoError(t, second.SetDeadline(time.Now().Add(wait)))
	got, err := io.ReadAll(second)
	require.NoError(t, err, "the message ends with a clean close, not a reset")
	assert.Equal(t, busyMessage, string(got))
	second.Close()

	assert.Equal(t, "turned away "+second.LocalAddr().String(), srv.out.next(t))
}

func TestTurnedAwayClientThatAlreadySentGetsTheMessageWithoutAReset(t *testing.T) {
	srv := startServer(t)
	first := dial(t, srv.addr)
	defer first.Close()
	srv.out.next(t)

	// Unread input on a closed socket makes the kernel send a reset,
	// which can destroy the message; the server must drain first.
	// Whether the input arrives before an abrupt close is a race, so
	// thirty clients try: at least one of them all but surely loses it.
	for i := 0; i < 30; i++ {
		other := dial(t, srv.addr)
		_, err := io.WriteString(other, "hello, are you free?\n")
		require.NoError(t, err)
		got, err := io.ReadAll(other)
		require.NoError(t, err, "client %d: want the message and a clean end, not a reset", i+1)
		assert.Equal(t, busyMessage, string(got))
		other.Close()
	}
}

func TestFirstClientIsStillServedAfterOthersAreTurnedAway(t *testing.T) {
	srv := startServer(t)
	first := dial(t, srv.addr)
	defer first.Close()
	srv.out.next(t)

	for i := 0; i < 3; i++ {
		other := dial(t, srv.addr)
		got, err := io.ReadAll(other)
		require.NoError(t, err)
		assert.Equal(t, busyMessage, string(got))
		other.Close()
	}

	_, err := io.WriteString(first, "hello\n")
	require.NoError(t, err)
	got, err := io.ReadAll(first)
	require.NoError(t, err)
	assert.Equal(t, "hello\n", string(got))
	first.Close()
	require.NoError(t, srv.wait(t))
	assert.Equal(t, 3, strings.Count(srv.out.String(), "turned away "))
}

func TestOnceTheFirstClientIsDoneTheKernelRefusesAgain(t *testing.T) {
	srv := startServer(t)
	first := dial(t, srv.addr)
	_, err := io.WriteString(first, "hello\n")
	require.NoError(t, err)
	_, err = io.ReadAll(first)
	require.NoError(t, err)
	first.Close()
	require.NoError(t, srv.wait(t), "one client served means a clean exit")

	// The listener is closed: nobody is left to say "busy".
	_, err = net.DialTimeout("tcp", srv.addr, wait)
	require.Error(t, err)
	refused := isErrno(err, syscall.ECONNREFUSED)
	assert.True(t, refused, "want connection refused, got %v", err)
}

func TestServerReturnsOnlyWhenTheTurnedAwayClientIsDone(t *testing.T) {
	srv := startServer(t)
	first := dial(t, srv.addr)
	srv.out.next(t)

	// The second client reads the message but stays connected, so the
	// server's goroutine is still draining it (for up to a second)...
	second := dial(t, srv.addr)
	got, err := io.ReadAll(second)
	require.NoError(t, err)
	assert.Equal(t, busyMessage, string(got))

	// ...when the first client is done.
	_, err = io.WriteString(first, "hello\n")
	require.NoError(t, err)
	_, err = io.ReadAll(first)
	require.NoError(t, err)
	first.Close()
	require.NoError(t, srv.wait(t))

	// A server that returned without waiting for its goroutine would
	// leave it running, and this line not yet printed.
	assert.Contains(t, srv.out.String(), "turned away "+second.LocalAddr().String(),
		"run returned while a client was still being turned away")
}

func TestStopWhileServingExitsCleanly(t *testing.T) {
	srv := startServer(t)
	first := dial(t, srv.addr)
	defer first.Close()
	srv.out.next(t) // connected; the server waits in Read
	srv.stop()      // what Ctrl+C does
	require.NoError(t, srv.wait(t))
}

// The README shows this session: a first client, a second one turned
// away, then the first one's message echoed.
func TestReadmeTranscript(t *testing.T) {
	srv := startServer(t)
	first := dial(t, srv.addr)
	srv.out.next(t)

	second := dial(t, srv.addr)
	got, err := io.ReadAll(second)
	require.NoError(t, err)
	second.Close()
	assertTranscript(t, "second", string(got))
	srv.out.next(t) // "turned away ..."

	_, err = io.WriteString(first, "hello\n")
	require.NoError(t, err)
	_, err = io.ReadAll(first)
	require.NoError(t, err)
	first.Close()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "server", srv.out.String())
}

// ---- helpers ----

type server struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program on port 0 and waits for the address it
// listens on.
func startServer(t *testing.T) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLines(), stop: cancel, done: make(chan error, 1)}
	go func() { srv.done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, nil, srv.out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(wait):
			t.Error("server did not stop after cancel")
		}
	})
	first := srv.out.next(t)
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	srv.addr = addr
	return srv
}

// wait returns the program's result, failing the test if it runs on.
func (s *server) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // let Cleanup see it too
		return err
	case <-time.After(wait):
		t.Fatal("server did not return")
		return nil
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// lines is an io.Writer that keeps what the program prints, so a test
// can wait for the next line instead of sleeping. It never blocks the
// program and never drops a line: Write appends under a mutex and wakes
// a waiter through a channel that holds at most one wake-up, and the
// waiter looks again, with a deadline.
type lines struct {
	mu       sync.Mutex
	all      strings.Builder
	complete []string // every whole line so far
	part     string   // the start of a line still being written
	taken    int      // lines already returned by next
	notify   chan struct{}
}

func newLines() *lines { return &lines{notify: make(chan struct{}, 1)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.all.Write(p)
	l.part += string(p)
	for {
		line, rest, ok := strings.Cut(l.part, "\n")
		if !ok {
			break
		}
		l.complete = append(l.complete, line)
		l.part = rest
	}
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default: // a wake-up is already waiting
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// next returns the next whole line the program printed, waiting for it
// for at most wait.
func (l *lines) next(t *testing.T) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		if l.taken < len(l.complete) {
			line := l.complete[l.taken]
			l.taken++
			l.mu.Unlock()
			return line
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-deadline:
			t.Fatalf("no line printed within %v; so far:\n%s", wait, l.String())
			return ""
		}
	}
}

var ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]):\d+`)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring "$ " lines and port numbers.
func assertTranscript(t *testing.T, name, got string) {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	marker := "<!-- transcript: " + name + " -->"
	_, after, ok := strings.Cut(string(readme), marker)
	require.True(t, ok, "README.md has no %s", marker)
	_, block, ok := strings.Cut(after, "```console\n")
	require.True(t, ok, "no ```console block after %s", marker)
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok, "unterminated block after %s", marker)
	var want []string
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "$ ") {
			want = append(want, ports.ReplaceAllString(line, "$1:PORT"))
		}
	}
	have := strings.Split(ports.ReplaceAllString(strings.TrimSuffix(got, "\n"), "$1:PORT"), "\n")
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}
