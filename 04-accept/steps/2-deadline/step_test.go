package main

// Step 2's tests call serveOne in this process on a free port, as main
// does: nothing to build, and the test sees every line it prints.

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fix for step 1's pitfall: the deadline ends the wait.
func TestASilentClientIsDroppedAtTheDeadline(t *testing.T) {
	srv := start(t, func(stdout io.Writer) error { return serveOne("127.0.0.1:0", 100*time.Millisecond, stdout) })
	dial(t, srv.addr) // and then say nothing

	err := srv.wait(t)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "the deadline, not the client, ended the wait")
}

// The pitfall, fixed in step 3. The client sends more than the one Read
// takes; closing a socket with unread input makes the kernel answer with
// a reset (RST) instead of the normal end (FIN). The client's read fails
// instead of ending cleanly, and on some systems (Windows) the reset
// also throws away the echo before the client has read it.
func TestClosingWithUnreadInputResetsTheConnection(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "windows" {
		t.Skip("checked where the kernel is known to reset on close with unread input: Linux and Windows")
	}
	srv := start(t, func(stdout io.Writer) error { return serveOne("127.0.0.1:0", wait, stdout) })
	conn := dial(t, srv.addr)
	_, err := conn.Write(bytes.Repeat([]byte("x"), 3000)) // three reads' worth
	require.NoError(t, err)
	require.NoError(t, srv.wait(t), "the server itself saw nothing wrong")

	_, err = io.ReadAll(conn)
	assert.True(t, isReset(err), "want connection reset by peer, got %v", err)
}

// isReset reports ECONNRESET, or Winsock's number for it (10054).
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.Errno(10054))
}

// ---- helpers: the step's serveOne run in this process ----

// wait bounds every blocking step of a test, so a broken step fails the
// test instead of hanging it.
const wait = 5 * time.Second

// server is serveOne running in a goroutine of the test, with what it
// prints and what it returns.
type server struct {
	addr     string
	out      *lines
	done     chan error
	returned chan struct{} // closed when serveOne has returned
}

// start runs serve and waits for its first line, the address it listens
// on. If the test ends first, a client that connects and leaves lets a
// server still in Accept or Read return.
func start(t *testing.T, serve func(stdout io.Writer) error) *server {
	t.Helper()
	srv := &server{out: newLines(), done: make(chan error, 1), returned: make(chan struct{})}
	go func() {
		err := serve(srv.out)
		close(srv.returned)
		srv.done <- err
	}()
	first := srv.out.next(t)
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	srv.addr = addr
	t.Cleanup(func() {
		select {
		case <-srv.returned:
			// Its port is closed, and may already be another test's:
			// dialling it now could disturb that test.
		default:
			if conn, err := net.DialTimeout("tcp", addr, wait); err == nil {
				conn.Close()
			}
		}
	})
	return srv
}

// wait returns what serveOne returned, failing the test if it runs on.
func (s *server) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(wait):
		t.Fatal("serveOne did not return")
		return nil
	}
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn.(*net.TCPConn)
}

// lines keeps what serveOne prints, so a test can wait for the next line.
// Write never blocks: it appends under a mutex and leaves at most one
// wake-up in notify; next looks again after each wake-up, with a deadline.
type lines struct {
	mu       sync.Mutex
	complete []string
	part     string
	taken    int
	notify   chan struct{}
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
		l.complete = append(l.complete, line)
		l.part = rest
	}
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

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
			t.Fatalf("no line printed within %v", wait)
			return ""
		}
	}
}
