package main

// The machinery of the tests: the program run in the test process, its
// output read line by line, clients, stand-ins and attackers. The claims
// are in main_test.go and robustness_test.go.

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step of a test, so a broken server fails the
// test instead of hanging it.
const wait = 5 * time.Second

// quiet is how long a test listens to make sure that nothing arrives.
// Nothing is expected, so the test cannot wait for it; a short read
// deadline is the honest way to say "not yet".
const quiet = 200 * time.Millisecond

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

// serveServer runs srv on a fresh loopback listener (or on ln, if given)
// and stops it when the test ends.
func serveServer(t *testing.T, srv *Server, ln ...net.Listener) (*Server, string) {
	t.Helper()
	if len(ln) == 0 {
		l, err := nettest.NewLocalListener("tcp")
		require.NoError(t, err)
		ln = append(ln, l)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln[0]) }()
	t.Cleanup(func() {
		srv.Close()
		receive(t, done)
	})
	return srv, ln[0].Addr().String()
}

func serveHandler(t *testing.T, h Handler, sequential bool) string {
	t.Helper()
	_, addr := serveServer(t, &Server{Handler: h, Sequential: sequential, IdleTimeout: wait})
	return addr
}

// serveCmd serves the cmd handler with run in place of the real exec.
func serveCmd(t *testing.T, run runFunc) string {
	t.Helper()
	return serveHandler(t, &cmdHandler{run: run, timeout: wait}, false)
}

// recorder stands in for runProgram: it remembers every call and runs
// nothing.
type recorder struct {
	mu   sync.Mutex
	got  [][]string
	out  []byte
	fail error
}

func (r *recorder) run(_ context.Context, name string, args []string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, append([]string{name}, args...))
	return r.out, r.fail
}

func (r *recorder) calls() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

// flakyListener fails its first Accepts with the given errors. It notes
// when each Accept was called, so a test can measure the pauses.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	errs  []error
	calls []time.Time
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func (l *flakyListener) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.calls...)
}

// lines is an io.Writer that keeps every line written to it, so a test
// can wait for the next line instead of sleeping. It never blocks the
// writer and never drops a line: Write appends under the mutex and wakes
// a waiter through notify, which holds at most one wake-up; a waiter
// looks again after each wake-up, until its deadline.
type lines struct {
	mu     sync.Mutex
	all    strings.Builder
	part   string
	done   []string // complete lines, in order
	read   int      // how many of them next has returned
	notify chan struct{}
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
		l.done = append(l.done, line)
		l.part = rest
	}
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default: // a wake-up is pending already
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// next returns the next line not returned yet, waiting up to wait for it.
func (l *lines) next(t *testing.T) string {
	t.Helper()
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		l.mu.Lock()
		if l.read < len(l.done) {
			line := l.done[l.read]
			l.read++
			l.mu.Unlock()
			return line
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-timeout.C:
			t.Fatalf("no line printed within %v; so far:\n%s", wait, l.String())
			return ""
		}
	}
}

// waitForLine consumes lines until one contains part.
func waitForLine(t *testing.T, l *lines, part string) string {
	t.Helper()
	for {
		if line := l.next(t); strings.Contains(line, part) {
			return line
		}
	}
}

func newLogger(w io.Writer) *log.Logger { return log.New(w, "", 0) }

func runWithTimeout(t *testing.T, args []string, stdin io.Reader, stdout io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return run(ctx, args, stdin, stdout, io.Discard)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

func dialLines(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn := dial(t, addr)
	return conn, bufio.NewReader(conn)
}

func dialFrames(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	return dialLines(t, addr)
}

// hangUpOnEOF makes conn a polite client: when the server hangs up, it
// hangs up too, so the server's graceful close need not wait for it.
func hangUpOnEOF(conn net.Conn) {
	go func() {
		io.Copy(io.Discard, conn)
		conn.Close()
	}()
}

// askLine sends one line and returns the reply line without its "\n".
func askLine(t *testing.T, conn net.Conn, replies *bufio.Reader, line string) string {
	t.Helper()
	_, err := io.WriteString(conn, line+"\n")
	require.NoError(t, err)
	reply, err := replies.ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSuffix(reply, "\n")
}

// askFrame sends one command line and returns the framed reply.
func askFrame(t *testing.T, conn net.Conn, replies *bufio.Reader, line string) string {
	t.Helper()
	_, err := io.WriteString(conn, line+"\n")
	require.NoError(t, err)
	reply, err := readFrame(replies)
	require.NoError(t, err, "reply to %q", line)
	return string(reply)
}

// assertNothingArrives checks that no reply comes within quiet.
func assertNothingArrives(t *testing.T, conn net.Conn, replies *bufio.Reader) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(quiet)))
	got, err := replies.ReadString('\n')
	assert.True(t, isTimeout(err), "expected no reply yet, got %q (%v)", got, err)
}

// receive waits for one value from ch, failing the test if none comes.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("nothing received within %v", wait)
		var zero T
		return zero
	}
}

// closedPort returns an address where nothing listens: a port that was
// just free and has been closed again.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}

func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (on Debian: apt-get install %s); .ci/run installs it", name, map[string]string{"nc": "netcat-openbsd", "telnet": "telnet"}[name])
	}
	return path
}

// skipWithoutEcho skips where echo is not a program: on Windows it is
// built into cmd.exe, so the cmd handler reports it as unavailable.
func skipWithoutEcho(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("echo is a cmd.exe built-in on Windows, not a program the handler can run")
	}
	if _, err := exec.LookPath("echo"); err != nil {
		t.Skip("no echo program on this machine")
	}
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
		if !strings.HasPrefix(line, "$ ") && line != "^C" {
			want = append(want, ports.ReplaceAllString(line, "$1:PORT"))
		}
	}
	have := strings.Split(ports.ReplaceAllString(strings.TrimSuffix(got, "\n"), "$1:PORT"), "\n")
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}

// talkTo runs a real client program, types one line into it, waits for
// the reply, then stops the server: the farewell and the close end the
// program. The line says which tool sent it.
func talkTo(t *testing.T, srv *server, tool string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	name := "nc"
	if strings.Contains(tool, "telnet") {
		name = "telnet"
	}
	_, err = io.WriteString(stdin, "hi from "+name+"\n")
	require.NoError(t, err)
	var got strings.Builder
	out := bufio.NewReader(stdout)
	for !strings.Contains(got.String(), "HI FROM") {
		line, err := out.ReadString('\n')
		got.WriteString(line)
		require.NoError(t, err, "so far: %q", got.String())
	}
	srv.stop()
	if name == "nc" {
		// nc keeps waiting for its input even after the server has
		// closed; ending the input lets it leave once the farewell is in.
		// (It sends no FIN for that: the server still closes first.)
		stdin.Close()
	}
	// telnet, on the contrary, quits as soon as its input ends, so
	// its input stays open until the server has closed the connection.
	rest, _ := io.ReadAll(out)
	got.Write(rest)
	stdin.Close()
	cmd.Wait() // telnet exits 1 when the server closes; its output is what counts
	require.NoError(t, srv.wait(t))
	return got.String()
}

// serverGoroutines returns the stacks of the goroutines, other than the
// caller's, that have a frame matching ours.
func serverGoroutines(ours *regexp.Regexp) []string {
	buf := make([]byte, 1<<20)
	stacks := strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
	var found []string
	for _, g := range stacks[1:] { // stacks[0] is the caller
		if ours.MatchString(g) {
			found = append(found, g)
		}
	}
	return found
}

// assertFreshClientIsServed is the check after every attack: a new
// client still gets its answer.
func assertFreshClientIsServed(t *testing.T, addr string) {
	t.Helper()
	conn, replies := dialLines(t, addr)
	assert.Equal(t, "STILL THERE?", askLine(t, conn, replies, "still there?"))
	conn.Close()
}

type floodResult struct {
	sent int64
	err  error
}

// startFlood connects a client that sends up to 64 MB of lines and never
// reads a reply. The result says how far it got and how it stopped.
func startFlood(t *testing.T, addr string) <-chan floodResult {
	t.Helper()
	conn := dial(t, addr)
	done := make(chan floodResult, 1)
	go func() {
		line := append(bytes.Repeat([]byte("flood "), 170), '\n')
		var res floodResult
		for res.sent < 64<<20 {
			n, err := conn.Write(line)
			res.sent += int64(n)
			if err != nil {
				res.err = err
				break
			}
		}
		done <- res
	}()
	return done
}

// trickle sends conn one byte every 20 ms, and never a newline, until
// the returned function is called or a write fails.
func trickle(t *testing.T, conn net.Conn) (stop func()) {
	t.Helper()
	quit := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-quit:
				return
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() { close(quit) })
		receive(t, stopped)
	}
	t.Cleanup(stop)
	return stop
}

// secondLoopbackDialer dials from 127.0.0.2, a client at another address
// than the tests' usual 127.0.0.1. Linux answers on all of 127.0.0.0/8;
// macOS has only 127.0.0.1 unless an alias is added.
func secondLoopbackDialer(t *testing.T) *net.Dialer {
	t.Helper()
	d := &net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	ln, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot use 127.0.0.2 here (%v); on macOS: sudo ifconfig lo0 alias 127.0.0.2", err)
	}
	ln.Close()
	return d
}

// stuckStdout passes its first line to lines, then blocks every Write
// until release is called, like a pipe that nobody reads.
type stuckStdout struct {
	lines    *lines
	writes   atomic.Int32
	released chan struct{}
	once     sync.Once
}

func newStuckStdout(t *testing.T) *stuckStdout {
	s := &stuckStdout{lines: newLines(), released: make(chan struct{})}
	t.Cleanup(s.release)
	return s
}

func (s *stuckStdout) Write(p []byte) (int, error) {
	if s.writes.Add(1) > 1 {
		<-s.released
	}
	return s.lines.Write(p)
}

func (s *stuckStdout) release() { s.once.Do(func() { close(s.released) }) }

// readerConn reads through the bufio.Reader that may already hold some
// of the connection's bytes.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// client is the program run with -client in the test process, its
// output captured line by line.
type client struct {
	stdout, stderr *lines
	stop           context.CancelFunc
	done           chan error
}

// startClient runs the program with args and stdin.
func startClient(t *testing.T, stdin io.Reader, args ...string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	c := &client{stdout: newLines(), stderr: newLines(), stop: cancel, done: make(chan error, 1)}
	go func() { c.done <- run(ctx, args, stdin, c.stdout, c.stderr) }()
	t.Cleanup(cancel)
	return c
}

// wait returns the client's result, failing the test if it runs on.
func (c *client) wait(t *testing.T) error {
	t.Helper()
	return receive(t, c.done)
}
