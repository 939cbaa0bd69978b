package main

// The machinery of the tests: a server run in this process with its log
// captured, clients with a deadline on every call, a recorder of output
// lines, goroutine and transcript checks, and a listener that fails on
// purpose.

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step of a test, so a broken server fails the
// test instead of hanging it.
const wait = 5 * time.Second

// greetingLine is what every client reads first.
const greetingLine = "welcome to 06-goroutines: every message you send comes back after OK..."

// testServer is the program running in this test process, as `go run`
// would run it, with its log captured line by line.
type testServer struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program on a free port with the extra flags in
// args, and waits for it to print the address it listens on. The server
// is stopped, and waited for, when the test ends.
func startServer(t testing.TB, args ...string) *testServer {
	t.Helper()
	out := newLines()
	return startServerWriting(t, out, out, args...)
}

// startServerWriting is startServer with the program's stdout given:
// stdout must pass what it is written on to out, at least the first line.
func startServerWriting(t testing.TB, stdout io.Writer, out *lines, args ...string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &testServer{out: out, stop: cancel, done: make(chan error, 1)}
	args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	go func() { srv.done <- run(ctx, args, nil, stdout, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(2 * wait):
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
func (s *testServer) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // let Cleanup see it too
		return err
	case <-time.After(2 * wait):
		t.Fatal("server did not return")
		return nil
	}
}

func runWithTimeout(t testing.TB, args []string, stdin io.Reader, stdout io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return run(ctx, args, stdin, stdout, io.Discard)
}

// testClient is the program's -client running in this test process.
type testClient struct {
	stdout, stderr *lines
	stop           context.CancelFunc // what Ctrl+C does
	done           chan error
}

// startClient runs the program with -client and args, reading stdin.
func startClient(t testing.TB, stdin io.Reader, args ...string) *testClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &testClient{stdout: newLines(), stderr: newLines(), stop: cancel, done: make(chan error, 1)}
	args = append([]string{"-client"}, args...)
	go func() { c.done <- run(ctx, args, stdin, c.stdout, c.stderr) }()
	t.Cleanup(cancel)
	return c
}

// wait returns the client's result, failing the test if it runs on.
func (c *testClient) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(wait):
		t.Fatal("the client did not return")
		return nil
	}
}

// dial connects with a deadline on every later read and write, and
// closes the connection when the test ends.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialGreeted connects and reads the greeting line.
func dialGreeted(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn := dial(t, addr)
	require.Equal(t, greetingLine+"\n", readLine(t, conn))
	return conn
}

// readLine reads one line byte by byte, so that nothing after it is
// swallowed by a buffer.
func readLine(t testing.TB, conn net.Conn) string {
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

func send(t testing.TB, conn io.Writer, msg string) {
	t.Helper()
	_, err := io.WriteString(conn, msg)
	require.NoError(t, err)
}

// readEcho reads replies until they carry msg. TCP is a stream: msg may
// come back in one chunk ("OK...msg") or in several ("OK...ms", "OK...g"),
// so the test removes the markers and compares what is left.
func readEcho(t testing.TB, conn net.Conn, msg string) {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		payload := strings.ReplaceAll(string(got), "OK...", "")
		if payload == msg && strings.HasPrefix(string(got), "OK...") {
			return
		}
		require.NoError(t, err, "waiting for the echo of %q, got %q", msg, got)
		require.True(t, strings.HasPrefix(msg, payload), "want the echo of %q, got %q", msg, got)
	}
}

// assertServesAFreshClient checks the server still works after an attack.
func assertServesAFreshClient(t testing.TB, addr string) {
	t.Helper()
	conn := dialGreeted(t, addr)
	send(t, conn, "are you alive?\n")
	readEcho(t, conn, "are you alive?\n")
	conn.Close()
}

// dialFrom is dial from the local address ip.
func dialFrom(t testing.TB, ip net.IP, addr string) net.Conn {
	t.Helper()
	dialer := net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: ip}}
	conn, err := dialer.Dial("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// stuckWriter passes its first pass lines on to out, then blocks every
// Write until unblock is called. It tells entered when a Write blocks.
// The program writes to it from one goroutine at a time.
type stuckWriter struct {
	out     *lines
	pass    int
	entered chan struct{} // capacity 1
	release chan struct{}
	once    sync.Once
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	if w.pass > 0 {
		w.pass--
		return w.out.Write(p)
	}
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.release
	return w.out.Write(p)
}

func (w *stuckWriter) unblock() { w.once.Do(func() { close(w.release) }) }

// secondLoopbackAddress returns 127.0.0.2, for a client that must not
// share 127.0.0.1 with the others, or skips the test where a program
// cannot use it.
func secondLoopbackAddress(t testing.TB) net.IP {
	t.Helper()
	ip := net.IPv4(127, 0, 0, 2)
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: ip})
	if err != nil {
		t.Skipf("cannot use a second loopback address, 127.0.0.2 (macOS has only 127.0.0.1 unless an alias is added): %v", err)
	}
	ln.Close()
	return ip
}

// lines is an io.Writer that keeps each complete line, so a test can wait
// for the next line, or for a line that says something, instead of
// sleeping. It never blocks the program that writes to it and never drops
// a line: Write appends under a mutex and wakes a waiter through a
// notify channel of capacity 1, without waiting; waiters scan again on
// each wake-up, and every 10 ms in case another waiter took it.
type lines struct {
	mu     sync.Mutex
	all    strings.Builder
	part   string
	got    []string
	read   int           // lines already returned by next and waitFor
	notify chan struct{} // capacity 1: "something arrived"
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
		l.got = append(l.got, line)
		l.part = rest
	}
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default: // a wake-up is already pending
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// count returns how many lines so far contain s.
func (l *lines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.got {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// next returns the next line in order.
func (l *lines) next(t testing.TB) string {
	t.Helper()
	return l.waitFor(t, "")
}

// waitFor returns the next line that contains s, skipping those before it.
func (l *lines) waitFor(t testing.TB, s string) string {
	t.Helper()
	var found string
	l.waitUntil(t, fmt.Sprintf("a line containing %q", s), func(got []string) bool {
		for l.read < len(got) {
			line := got[l.read]
			l.read++
			if strings.Contains(line, s) {
				found = line
				return true
			}
		}
		return false
	})
	return found
}

// waitForCount waits until n lines contain s.
func (l *lines) waitForCount(t testing.TB, s string, n int) {
	t.Helper()
	l.waitUntil(t, fmt.Sprintf("%d lines containing %q", n, s), func(got []string) bool {
		count := 0
		for _, line := range got {
			if strings.Contains(line, s) {
				count++
			}
		}
		return count >= n
	})
}

// waitUntil waits until done, given every complete line so far, is true;
// what says what the test waits for. done runs with the lines locked.
func (l *lines) waitUntil(t testing.TB, what string, done func(got []string) bool) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	rescan := time.NewTicker(10 * time.Millisecond)
	defer rescan.Stop()
	for {
		l.mu.Lock()
		ok := done(l.got)
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-l.notify:
		case <-rescan.C:
		case <-deadline.C:
			t.Fatalf("want %s within %v; so far:\n%s", what, wait, l.String())
		}
	}
}

// assertHandlerGoroutines waits until exactly want goroutines are
// serving a client, and fails listing them if that does not happen.
func assertHandlerGoroutines(t testing.TB, want int) {
	t.Helper()
	var found []string
	deadline := time.Now().Add(wait)
	for {
		found = handlerStacks()
		if len(found) == want || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	assert.Len(t, found, want, "goroutines serving a client:\n%s", strings.Join(found, "\n\n"))
}

// handlerWaitsIn reports whether a goroutine serving a client is, right
// now, inside call (as stack traces name it) and parked there, waiting
// for its socket to be ready.
func handlerWaitsIn(call string) bool {
	for _, g := range handlerStacks() {
		if strings.Contains(g, call) && strings.Contains(g, "internal/poll.runtime_pollWait(") {
			return true
		}
	}
	return false
}

// handlerStacks returns the stack of every goroutine serving a client.
func handlerStacks() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "06-goroutines.(*server).handle(") {
			found = append(found, g)
		}
	}
	return found
}

// assertNoGoroutinesLeft waits until no goroutine is running code from
// this package's non-test files, and fails listing them if some still are
// after half a second: time enough for goroutines on their way out, too
// short for one still talking to a client.
func assertNoGoroutinesLeft(t testing.TB) {
	t.Helper()
	// This package's files as the compiler recorded them, which is how
	// stack traces name them, whatever the working directory is (a test
	// binary built on one system may run on another, under Wine say).
	_, self, _, ok := runtime.Caller(0)
	require.True(t, ok, "no caller information")
	prefix := path.Dir(self) + "/"
	var left []string
	deadline := time.Now().Add(500 * time.Millisecond)
	for {
		left = left[:0]
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		// The first goroutine is this one, running the test.
		for _, g := range strings.Split(string(buf), "\n\n")[1:] {
			for _, line := range strings.Split(g, "\n") {
				// A frame's file line reads "\t/path/main.go:42 +0x1d".
				file, _, _ := strings.Cut(strings.TrimSpace(line), " ")
				if i := strings.LastIndex(file, ":"); i > 0 {
					file = file[:i]
				}
				if strings.HasPrefix(file, prefix) && !strings.HasSuffix(file, "_test.go") {
					left = append(left, g)
					break
				}
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	assert.Empty(t, left, "goroutines still running the server's code")
}

// failingListener fails its first Accepts with errno, the way a kernel
// reports it, then accepts for real. Tests use it for the errors a real
// test cannot cause: Go's own Accept retries ECONNABORTED on Linux, and
// filling the system's file table (ENFILE) would starve the machine. It
// notes when each Accept was called, so a test can measure the pauses.
type failingListener struct {
	*net.TCPListener
	errno syscall.Errno
	mu    sync.Mutex
	fails int
	calls []time.Time
}

func (l *failingListener) AcceptTCP() (*net.TCPConn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(),
			Err: os.NewSyscallError("accept", l.errno)}
	}
	l.mu.Unlock()
	return l.TCPListener.AcceptTCP()
}

func (l *failingListener) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.calls...)
}

// runAcceptLoop runs a server's accept loop on a faked listener, with
// room for 10 clients, and returns its log. When the test ends it stops
// the loop, closes the listener and shuts the server down.
func runAcceptLoop(t *testing.T, fake *failingListener) *lines {
	t.Helper()
	out := newLines()
	srv := &server{idle: wait, grace: wait, log: log.New(out, "", 0),
		conns: make(map[*net.TCPConn]struct{}), perIP: make(map[netip.Addr]int)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.acceptLoop(ctx, fake, 10)
	}()
	t.Cleanup(func() {
		cancel()
		fake.Close()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("the accept loop did not end when its listener closed")
		}
		srv.shutdown(time.Now().Add(wait))
	})
	return out
}

// closedPort returns an address where nothing listens: a port that was
// just free and has been closed again.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func portOf(t testing.TB, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}

func lookTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (on Debian: apt-get install %s); .ci/run installs it", name, map[string]string{"nc": "netcat-openbsd", "telnet": "telnet"}[name])
	}
	return path
}

var ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]|localhost):\d+`)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring the "$ " command lines and the port
// numbers, which change from run to run.
func assertTranscript(t testing.TB, name, got string) {
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

// declarations returns the source of each top-level declaration in
// files, doc comment included, by name: "server.handle" for a method.
func declarations(t testing.TB, files ...string) map[string]string {
	t.Helper()
	decls := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		file, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		require.NoError(t, err)
		text := func(node ast.Node, doc *ast.CommentGroup) string {
			from := node.Pos()
			if doc != nil {
				from = doc.Pos()
			}
			return string(src[fset.Position(from).Offset:fset.Position(node.End()).Offset])
		}
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				key := d.Name.Name
				if d.Recv != nil {
					recv := d.Recv.List[0].Type
					if star, ok := recv.(*ast.StarExpr); ok {
						recv = star.X
					}
					key = recv.(*ast.Ident).Name + "." + key
				}
				decls[key] = text(d, d.Doc)
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						decls[spec.Name.Name] = text(d, d.Doc)
					case *ast.ValueSpec:
						decls[spec.Names[0].Name] = text(d, d.Doc)
					}
				}
			}
		}
	}
	return decls
}
