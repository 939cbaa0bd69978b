package main

// The machinery of the tests in main_test.go: the program run in this
// process, a recorder of what it prints, and the README's transcripts.

import (
	"context"
	"io"
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

// wait bounds every blocking step of a test, so a broken program fails
// the test instead of hanging it.
const wait = 5 * time.Second

// server is the program running in this test process, as `go run` would
// run it, with its output captured line by line.
type server struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program with args and waits for it to print the
// address it listens on.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLines(), stop: cancel, done: make(chan error, 1)}
	go func() { srv.done <- run(ctx, args, nil, srv.out, io.Discard) }()
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

// canceled is a context that is already done: run returns as soon as it
// has listened, as if Ctrl+C came at once.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
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

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// portInTimeWait makes a connection on a fresh listener, lets the
// server's side close first, closes the listener, and returns the
// listener's address: its port is now held by a connection in TIME_WAIT.
func portInTimeWait(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client := dial(t, ln.Addr().String())
	require.NoError(t, ln.(*net.TCPListener).SetDeadline(time.Now().Add(wait)))
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close()
	require.NoError(t, server.SetDeadline(time.Now().Add(wait)))

	// The server closes first: it sends FIN and waits for the client's.
	require.NoError(t, server.(*net.TCPConn).CloseWrite())
	_, err = io.Copy(io.Discard, client) // the client reads the end...
	require.NoError(t, err)
	require.NoError(t, client.Close()) // ...and closes too
	// When the server reads the client's FIN, its side has moved to
	// TIME_WAIT: the protocol tells us, no sleeping needed.
	_, err = io.Copy(io.Discard, server)
	require.NoError(t, err)
	return ln.Addr().String()
}

var ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]|localhost):\d+`)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring the "$ " command lines and the port
// numbers, which change from run to run.
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
