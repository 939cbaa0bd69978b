package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
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

func TestPrintsTheAddressItReallyListensOn(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	// Port 0 asks the kernel for any free port; the program must print
	// the one it got, or nobody could connect.
	assert.NotEqual(t, "0", portOf(t, srv.addr))
	conn := dial(t, srv.addr)
	conn.Close()
}

func TestEchoesOneMessageThenExits(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)

	_, err := conn.Write([]byte("hello\n"))
	require.NoError(t, err)
	reply, err := io.ReadAll(conn) // until the server closes
	require.NoError(t, err, "the server should close with FIN, not reset")
	assert.Equal(t, "hello\n", string(reply))
	conn.Close() // a polite client closes when it reads the end

	require.NoError(t, srv.wait(t), "one client served means a clean exit")
	assert.Contains(t, srv.out.String(), `received 6 bytes: "hello\n"`)
}

func TestPrintsTheClientsAddressAndPort(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	defer conn.Close()

	// The server sees the client's side of the connection: the same
	// address and port that the client's LocalAddr reports.
	assert.Equal(t, "client connected from "+conn.LocalAddr().String(), srv.out.next(t))
}

func TestReplyArrivesWhenClientSentMoreThanOneRead(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)

	// 3000 bytes is more than the server's one 1024-byte read. Closing a
	// socket with unread input would send a reset, which can destroy the
	// echo in flight; the server drains the rest first.
	msg := bytes.Repeat([]byte("x"), 3000)
	_, err := conn.Write(msg)
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	reply, err := io.ReadAll(conn)
	require.NoError(t, err, "expected a clean end of stream, not a reset")
	assert.NotEmpty(t, reply)
	assert.Equal(t, msg[:len(reply)], reply, "the echo is a prefix of what was sent")
	require.NoError(t, srv.wait(t))
}

func TestSecondClientIsRefusedOnceTheFirstIsAccepted(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	first := dial(t, srv.addr)
	defer first.Close()
	srv.out.next(t) // "client connected from ...": the listener is closed now

	_, err := net.DialTimeout("tcp", srv.addr, wait)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, wsaECONNREFUSED), "want connection refused, got %v", err)
}

func TestClientThatLeavesWithoutSendingEndsCleanly(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	conn.Close()

	require.NoError(t, srv.wait(t))
	assert.Contains(t, srv.out.String(), "the client left without sending anything")
}

func TestClientThatResetsBeforeSendingIsReportedAndEndsCleanly(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	srv.out.next(t) // "client connected from ...": the server is reading now

	// Linger 0 makes Close send RST instead of FIN: an aborted client,
	// as when it crashes. That ends this one conversation, like a client
	// that leaves; the server says so in one line and exits 0.
	require.NoError(t, conn.(*net.TCPConn).SetLinger(0))
	require.NoError(t, conn.Close())

	require.NoError(t, srv.wait(t))
	assert.Equal(t, "the client reset the connection; nothing to echo", srv.out.next(t))
}

func TestSilentClientIsDroppedAfterTheIdleTimeout(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0", "-idle-timeout", "50ms")
	conn := dial(t, srv.addr)
	defer conn.Close()

	err := srv.wait(t)
	require.Error(t, err)
	assert.True(t, isTimeout(err), "want a timeout, got %v", err)
	assert.Contains(t, explain(err), "docs/errors.md#timeout")
}

func TestStopWhileWaitingForAClientExitsCleanly(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	srv.stop() // what Ctrl+C does
	require.NoError(t, srv.wait(t))
	assert.Contains(t, srv.out.String(), "stopped before any client connected")
}

func TestStopWhileTalkingToAClientExitsCleanly(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	defer conn.Close()
	srv.out.next(t) // connected; the server is now waiting in Read
	srv.stop()
	require.NoError(t, srv.wait(t))
}

func TestBusyAddressFailsWithAddressInUse(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()

	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE), "want EADDRINUSE, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#eaddrinuse)")
}

func TestClientSendsEachLineAndPrintsTheReply(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	var out bytes.Buffer
	err := runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hello\n"), &out)
	require.NoError(t, err)
	assert.Equal(t, "hello\n", out.String())
	require.NoError(t, srv.wait(t))
}

func TestClientStopsSendingWhenTheServerHasClosed(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	var out bytes.Buffer
	// This server answers one message only; the client must notice the
	// closed connection and end without an error.
	err := runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("one\ntwo\nthree\n"), &out)
	require.NoError(t, err)
	assert.Equal(t, "one\n", out.String())
	require.NoError(t, srv.wait(t))
}

func TestClientReportsConnectionRefused(t *testing.T) {
	addr := closedPort(t)
	err := runWithTimeout(t, []string{"-client", "-addr", addr}, strings.NewReader("hi\n"), io.Discard)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, wsaECONNREFUSED), "want ECONNREFUSED, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#econnrefused)")
}

func TestBadFlagIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-no-such-flag"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-addr")
}

func TestWorksWithNetcat(t *testing.T) {
	nc := lookTool(t, "nc")
	srv := startServer(t, "-addr", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(srv.addr)

	// nc sends its standard input and prints what comes back; the server
	// closes after the echo, which ends nc.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, nc, host, port)
	cmd.Stdin = strings.NewReader("hi from nc\n")
	got, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, "hi from nc\n", string(got))
	require.NoError(t, srv.wait(t))
}

func TestWorksWithTelnet(t *testing.T) {
	telnet := lookTool(t, "telnet")
	srv := startServer(t, "-addr", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(srv.addr)

	// telnet quits as soon as its input ends, so the input stays open
	// until the server reports that the echo went out.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stdin, feed := io.Pipe()
	cmd := exec.CommandContext(ctx, telnet, host, port)
	cmd.Stdin = stdin
	var got bytes.Buffer
	cmd.Stdout = &got
	require.NoError(t, cmd.Start())
	_, err := io.WriteString(feed, "hi from telnet\n")
	require.NoError(t, err)
	require.NoError(t, srv.wait(t))
	feed.Close()
	cmd.Wait() // telnet exits 1 when the server closes; its output is what counts
	assert.Contains(t, got.String(), "hi from telnet")
	// telnet turns the newline into the network's "\r\n" (with a NUL
	// after the "\r" in this mode), so only the text itself is compared.
	assert.Contains(t, srv.out.String(), `hi from telnet\r`)
}

// The README shows what a learner sees; these tests produce the same
// sessions and compare them line by line, ports aside.

func TestReadmeServerTranscript(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	_, err := conn.Write([]byte("hello\n"))
	require.NoError(t, err)
	_, err = io.ReadAll(conn)
	require.NoError(t, err)
	conn.Close()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "server", srv.out.String())
}

func TestReadmeClientTranscript(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	var out bytes.Buffer
	require.NoError(t, runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hello\n"), &out))
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "client", out.String())
}

func TestReadmeAddressInUseTranscript(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()
	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assertTranscript(t, "address-in-use", "error: "+inLinuxWords(t, err, explain(err))+"\n")
}

// ---- helpers ----

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

// lines is an io.Writer that hands each complete line to a channel, so a
// test can wait for the next line instead of sleeping.
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

// linuxWords is how Linux words the system error a README transcript
// shows, keyed by Winsock's number for the same error. Windows words it
// its own way ("bind: Only one usage of each socket address
// (protocol/network address/port) is normally permitted.").
var linuxWords = map[syscall.Errno]string{
	wsaEADDRINUSE: "bind: address already in use",
}

// inLinuxWords returns line unchanged, except on Windows: there it puts
// Linux's words in place of the system's own for the error inside err, so
// the transcript test still compares everything else on the line.
func inLinuxWords(t *testing.T, err error, line string) string {
	t.Helper()
	if runtime.GOOS != "windows" {
		return line
	}
	var sysErr *os.SyscallError
	require.True(t, errors.As(err, &sysErr), "want an *os.SyscallError inside %v", err)
	var errno syscall.Errno
	require.True(t, errors.As(sysErr, &errno), "want a syscall.Errno inside %v", sysErr)
	linux, ok := linuxWords[errno]
	require.True(t, ok, "no Linux wording for Winsock error %d (%v)", int(errno), errno)
	require.Contains(t, line, sysErr.Error())
	return strings.Replace(line, sysErr.Error(), linux, 1)
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
