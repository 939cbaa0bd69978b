//go:build exercise || solution

package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step of a test, so a broken server fails
// the test instead of hanging it.
const wait = 5 * time.Second

// spinAt is how many empty reads from one departed client make a test
// call it a spin. A correct server needs one to learn that the client
// left; a spinning one makes a thousand within milliseconds.
const spinAt = 1000

func TestEachClientIsGreetedAndAnswered(t *testing.T) {
	srv := startServer(t, wait)
	c := connect(t, srv.addr)
	srv.greets(t, c)
	assert.Equal(t, "OK...hello\n", c.ask(t, "hello\n"))
	assert.Equal(t, "OK...and again\n", c.ask(t, "and again\n"))
}

func TestClientThatLeftIsNotReadAgainAndAgain(t *testing.T) {
	srv := startServer(t, wait)
	c := connect(t, srv.addr)
	srv.greets(t, c)
	c.ask(t, "goodbye\n")
	c.leave()

	// A sequential server greets the next client only after the loop
	// for the previous one has ended, so the greeting means the server
	// is done with the first client; then count what that took.
	srv.greets(t, connect(t, srv.addr))
	// One empty read says the client left. A second one (to drain the
	// connection before closing) is harmless; a thousand are a spin.
	assert.LessOrEqual(t, srv.emptyReads(c.name), int64(2),
		"reads that returned 0, io.EOF after the client left")
}

func TestServerGoesBackToAcceptWhenAClientLeaves(t *testing.T) {
	srv := startServer(t, wait)
	c := connect(t, srv.addr)
	srv.greets(t, c)
	for i := 0; i < 3; i++ {
		if i == 1 {
			c.ask(t, "one line, then I go\n")
		}
		c.leave()
		next := connect(t, srv.addr)
		srv.greets(t, next)
		assert.Contains(t, srv.out.String(), "client "+c.name+" left\n")
		c = next
	}
}

func TestSilentClientIsToldAndClosedThenTheNextIsServed(t *testing.T) {
	srv := startServer(t, 100*time.Millisecond)
	c := connect(t, srv.addr)
	srv.greets(t, c)
	// Say nothing: the server gives up after 100ms.
	rest, err := io.ReadAll(c.r)
	require.NoError(t, err, "a clean close (FIN), not a reset")
	assert.Equal(t, "bye: idle for 100ms, closing\n", string(rest))
	c.leave()
	srv.greets(t, connect(t, srv.addr))
}

func TestClientThatResetsDoesNotStopTheServer(t *testing.T) {
	srv := startServer(t, wait)
	c := connect(t, srv.addr)
	srv.greets(t, c)
	// Linger 0 makes Close send RST instead of FIN: an abort.
	require.NoError(t, c.conn.(*net.TCPConn).SetLinger(0))
	c.leave()
	srv.greets(t, connect(t, srv.addr))
	assert.Contains(t, srv.out.String(), "client "+c.name+" reset the connection")
}

func TestStopWhileServingSaysGoodbyeAndReturnsNil(t *testing.T) {
	srv := startServer(t, wait)
	c := connect(t, srv.addr)
	srv.greets(t, c)
	srv.stop() // what Ctrl+C does
	rest, err := io.ReadAll(c.r)
	require.NoError(t, err)
	assert.Equal(t, "bye: server shutting down\n", string(rest))
	c.leave() // the server waits (up to a second) for us to close too
	assert.NoError(t, srv.wait(t), "stopping is not an error")
}

// TestReadmeTranscript replays the README's session: the whole program,
// driven by the real nc twice.
func TestReadmeTranscript(t *testing.T) {
	nc, err := exec.LookPath("nc")
	if err != nil {
		t.Skip("nc is not installed (on Debian: apt-get install netcat-openbsd)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := newLines()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, nil, out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("server did not stop after cancel")
		}
	})
	addr, ok := strings.CutPrefix(out.next(t), "listening on ")
	require.True(t, ok, "the first line gives the address")
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)

	for i := 0; i < 2; i++ {
		// -N: half-close when the input ends, so the server reads EOF.
		// A server that spins never closes, and nc waits until the
		// context's deadline kills it.
		cmdCtx, cmdCancel := context.WithTimeout(context.Background(), wait)
		cmd := exec.CommandContext(cmdCtx, nc, "-N", host, port)
		cmd.Stdin = strings.NewReader("hello\n")
		got, err := cmd.Output()
		cmdCancel()
		require.NoError(t, err, "nc should end when the server closes; got %q", got)
		assertTranscript(t, "nc", string(got))
		out.waitFor(t, " left")
	}
	cancel()
	select {
	case err := <-done:
		done <- err // let Cleanup see it too
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("server did not stop after cancel")
	}
	assertTranscript(t, "server", out.String())
}

// ---- the server under test ----

type server struct {
	addr string
	out  *lines
	ln   *countingListener
	stop context.CancelFunc
	done chan error
}

// startServer runs serve on a loopback listener that counts reads, and
// stops it at the end of the test the way run does on Ctrl+C: cancel
// the context and close the listener.
func startServer(t *testing.T, idle time.Duration) *server {
	t.Helper()
	inner, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	ln := &countingListener{Listener: inner, conns: map[string]*countingConn{}, spinning: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	context.AfterFunc(ctx, func() { ln.Close() })
	srv := &server{addr: ln.Addr().String(), out: newLines(), ln: ln, stop: cancel, done: make(chan error, 1)}
	go func() { srv.done <- serve(ctx, ln, idle, srv.out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(wait):
			t.Error("server did not stop after cancel")
		}
	})
	return srv
}

// greets waits for the greeting on c. It fails at once, saying why,
// when the server spins on a departed client or returns instead.
func (s *server) greets(t *testing.T, c *client) {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		line, err := c.r.ReadString('\n')
		if err != nil {
			line += " (" + err.Error() + ")"
		}
		got <- line
	}()
	select {
	case line := <-got:
		require.Equal(t, greeting, line, "want the greeting")
	case who := <-s.ln.spinning:
		t.Fatalf("the server spins: it read 0 bytes and io.EOF from %s %d times after that client left, and reads on", who, spinAt)
	case err := <-s.done:
		s.done <- err
		t.Fatalf("serve returned %q instead of going back to Accept: a client's end is not the server's", err)
	case <-time.After(wait):
		t.Fatalf("no greeting within %v; log so far:\n%s", wait, s.out.String())
	}
}

// wait returns serve's result, failing the test if it runs on.
func (s *server) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // let Cleanup see it too
		return err
	case <-time.After(wait):
		t.Fatal("serve did not return")
		return nil
	}
}

// emptyReads is how many times the server's Read returned 0, io.EOF on
// the connection from the client named who.
func (s *server) emptyReads(who string) int64 {
	s.ln.mu.Lock()
	defer s.ln.mu.Unlock()
	if c := s.ln.conns[who]; c != nil {
		return c.empty.Load()
	}
	return 0
}

// countingListener hands out connections that count empty reads, so a
// test can see a spin without waiting for it to end: it never does.
type countingListener struct {
	net.Listener
	mu       sync.Mutex
	conns    map[string]*countingConn // by the client's address
	spinning chan string              // the first client spun on
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &countingConn{TCPConn: conn.(*net.TCPConn), spinning: l.spinning}
	l.mu.Lock()
	l.conns[conn.RemoteAddr().String()] = c
	l.mu.Unlock()
	return c, nil
}

// countingConn is a TCP connection whose Read counts the times it
// returned 0 bytes and io.EOF. Embedding *net.TCPConn keeps every
// other method, CloseWrite included.
type countingConn struct {
	*net.TCPConn
	empty    atomic.Int64
	spinning chan string
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if n == 0 && errors.Is(err, io.EOF) && c.empty.Add(1) == spinAt {
		select {
		case c.spinning <- c.RemoteAddr().String():
		default:
		}
	}
	return n, err
}

// ---- the client side ----

type client struct {
	conn net.Conn
	r    *bufio.Reader
	name string // the client's address, as the server sees it
}

func connect(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return &client{conn: conn, r: bufio.NewReader(conn), name: conn.LocalAddr().String()}
}

// ask sends one line and returns the line that comes back.
func (c *client) ask(t *testing.T, msg string) string {
	t.Helper()
	_, err := io.WriteString(c.conn, msg)
	require.NoError(t, err)
	line, err := c.r.ReadString('\n')
	require.NoError(t, err, "want an answer to %q, got %q", msg, line)
	return line
}

// leave closes the client's connection: the server's Read sees io.EOF.
func (c *client) leave() { c.conn.Close() }

// ---- output ----

// lines is an io.Writer that hands each complete line to a channel, so
// a test can wait for a line instead of sleeping.
type lines struct {
	mu   sync.Mutex
	all  strings.Builder
	part string
	ch   chan string
}

func newLines() *lines { return &lines{ch: make(chan string, 1000)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.part += string(p)
	for {
		line, rest, ok := strings.Cut(l.part, "\n")
		if !ok {
			break
		}
		l.ch <- line
		l.part = rest
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

func (l *lines) next(t *testing.T) string {
	t.Helper()
	select {
	case line := <-l.ch:
		return line
	case <-time.After(wait):
		t.Fatalf("no line printed within %v; so far:\n%s", wait, l.String())
		return ""
	}
}

// waitFor waits for the next line that contains want.
func (l *lines) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case line := <-l.ch:
			if strings.Contains(line, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no line with %q within %v; so far:\n%s", want, wait, l.String())
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
