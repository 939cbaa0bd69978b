//go:build exercise || solution

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test, so a broken server fails
// the test instead of hanging it.
const wait = 5 * time.Second

func TestEchoesEveryLineUntilQuit(t *testing.T) {
	srv := startServer(t)
	conn, replies := dial(t, srv.addr)

	for _, line := range []string{"one", "two", "three"} {
		send(t, conn, line+"\n")
		assert.Equal(t, line+"\n", readLine(t, replies))
	}
	send(t, conn, "quit\n")
	assert.Equal(t, "bye\n", readLine(t, replies))
	rest, err := io.ReadAll(replies)
	require.NoError(t, err, "after bye the server closes with FIN, not a reset")
	assert.Empty(t, rest)
	conn.Close() // a polite client closes when it reads the end

	require.NoError(t, srv.wait(t))
	assert.Contains(t, srv.out.String(), `echoed "three"`)
	assert.Contains(t, srv.out.String(), "client said quit")
}

func TestSeveralLinesInOneWriteAreEachEchoed(t *testing.T) {
	srv := startServer(t)
	conn, replies := dial(t, srv.addr)

	// One write, one segment, very likely one Read on the server: the
	// server must still find three lines in it.
	send(t, conn, "a\nb\nc\n")
	for _, want := range []string{"a\n", "b\n", "c\n"} {
		assert.Equal(t, want, readLine(t, replies))
	}
}

func TestPartOfALineGetsNoAnswerUntilItsNewline(t *testing.T) {
	srv := startServer(t)
	conn, replies := dial(t, srv.addr)

	send(t, conn, "qu")
	// Nothing may come back for half a line. A short read deadline is
	// how a test says "nothing arrives": 200ms is ample for an answer
	// on loopback, and lets the server read "qu" on its own.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	got, err := replies.ReadString('\n')
	assert.True(t, isTimeout(err), "want no answer yet, got %q, %v", got, err)
	assert.Empty(t, got)

	// The end of the line completes the word: that is quit, not "it".
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	send(t, conn, "it\n")
	assert.Equal(t, "bye\n", readLine(t, replies))
	conn.Close()
	require.NoError(t, srv.wait(t))
}

func TestQuitEndingInCarriageReturnAsTelnetSendsItStillQuits(t *testing.T) {
	srv := startServer(t)
	conn, replies := dial(t, srv.addr)

	send(t, conn, "quit\r\n")
	assert.Equal(t, "bye\n", readLine(t, replies))
	conn.Close()
	require.NoError(t, srv.wait(t))
}

func TestClientThatLeavesWithoutQuitEndsCleanly(t *testing.T) {
	srv := startServer(t)
	conn, replies := dial(t, srv.addr)

	send(t, conn, "one\n")
	assert.Equal(t, "one\n", readLine(t, replies))
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	rest, err := io.ReadAll(replies)
	require.NoError(t, err)
	assert.Empty(t, rest)

	require.NoError(t, srv.wait(t))
	assert.Contains(t, srv.out.String(), "the client left")
}

func TestSilentClientIsDroppedAfterTheIdleTimeout(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "100ms")
	conn, replies := dial(t, srv.addr)

	send(t, conn, "one\n")
	assert.Equal(t, "one\n", readLine(t, replies))
	// Then silence: the server must give up on its own.
	err := srv.wait(t)
	require.Error(t, err)
	assert.True(t, isTimeout(err), "want a timeout, got %v", err)
}

func TestEndlessLineEndsTheConversationWithAnError(t *testing.T) {
	srv := startServer(t)
	conn, _ := dial(t, srv.addr)

	// 100 KB without a newline: the server must not buffer for ever.
	// The server may close (and reset) before all of it is sent, so
	// the write's error does not matter here.
	go conn.Write(bytes.Repeat([]byte("x"), 100_000))
	err := srv.wait(t)
	require.Error(t, err)
	assert.True(t, errors.Is(err, bufio.ErrTooLong), "want bufio.ErrTooLong, got %v", err)
}

func TestStopWhileTalkingExitsCleanly(t *testing.T) {
	srv := startServer(t)
	conn, replies := dial(t, srv.addr)
	send(t, conn, "one\n")
	readLine(t, replies)
	srv.stop() // what Ctrl+C does
	require.NoError(t, srv.wait(t))
}

// TestReadmeTranscript runs the README's session with the real nc.
func TestReadmeTranscript(t *testing.T) {
	nc, err := exec.LookPath("nc")
	if err != nil {
		t.Skip("nc is not installed (on Debian: apt-get install netcat-openbsd)")
	}
	srv := startServer(t)
	host, port, _ := net.SplitHostPort(srv.addr)

	// nc sends its input and prints the replies; the server closes
	// after bye, which ends nc.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, nc, host, port)
	cmd.Stdin = strings.NewReader("hello\nworld\nquit\n")
	got, err := cmd.Output()
	require.NoError(t, err)
	assertTranscript(t, "nc", string(got))

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

// startServer runs the program on port 0 with args and waits for the
// address it listens on.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLines(), stop: cancel, done: make(chan error, 1)}
	args = append([]string{"-addr", "127.0.0.1:0"}, args...)
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

// dial connects with a deadline and returns the connection and a
// reader for its replies.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

func send(t *testing.T, conn net.Conn, s string) {
	t.Helper()
	_, err := io.WriteString(conn, s)
	require.NoError(t, err)
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	require.NoError(t, err, "expected a line, got %q", line)
	return line
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
