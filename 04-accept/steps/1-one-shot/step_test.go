package main

// Step 1's tests call serveOne in this process on a free port, as main
// does: nothing to build, and the test sees every line it prints.

import (
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

func TestEchoesOneMessageThenCloses(t *testing.T) {
	srv := start(t, func(stdout io.Writer) error { return serveOne("127.0.0.1:0", stdout) })
	conn := dial(t, srv.addr)
	_, err := conn.Write([]byte("hello\n"))
	require.NoError(t, err)
	reply, err := io.ReadAll(conn) // until the server closes
	require.NoError(t, err)
	assert.Equal(t, "hello\n", string(reply))
	require.NoError(t, srv.wait(t))
}

func TestReadmeBareProgramTranscript(t *testing.T) {
	srv := start(t, func(stdout io.Writer) error { return serveOne("127.0.0.1:0", stdout) })
	conn := dial(t, srv.addr)
	_, err := conn.Write([]byte("hello\n"))
	require.NoError(t, err)
	_, err = io.ReadAll(conn)
	require.NoError(t, err)
	require.NoError(t, srv.wait(t))

	// The README's session, "$ " lines and port numbers aside.
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "<!-- transcript: step-1 -->\n```console\n")
	require.True(t, ok, "README.md has no step-1 transcript")
	block, _, _ := strings.Cut(after, "```")
	ports := regexp.MustCompile(`127\.0\.0\.1:\d+`)
	var want []string
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "$ ") {
			want = append(want, ports.ReplaceAllString(line, "127.0.0.1:PORT"))
		}
	}
	var have []string
	for _, line := range srv.out.all() {
		have = append(have, ports.ReplaceAllString(line, "127.0.0.1:PORT"))
	}
	assert.Equal(t, want, have)
}

// The pitfall, fixed in step 2: nothing in this step ends a wait for a
// client that connects and says nothing.
func TestASilentClientHoldsTheServerForever(t *testing.T) {
	srv := start(t, func(stdout io.Writer) error { return serveOne("127.0.0.1:0", stdout) })
	conn := dial(t, srv.addr)
	srv.out.next(t) // "client connected from ...": serveOne is in Read now

	// Forever cannot be waited for. The server has no timer of its own,
	// so if it has not returned after 300 ms, only the client can end it.
	select {
	case err := <-srv.done:
		t.Fatalf("serveOne returned while the client was silent: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	conn.Close() // the client leaves: only now does Read return
	assert.ErrorIs(t, srv.wait(t), io.EOF, "the silent client's leaving is what ended the wait")
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

// all is every whole line printed so far.
func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.complete...)
}
