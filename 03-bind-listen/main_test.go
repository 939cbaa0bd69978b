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

// wait bounds every blocking step of a test, so a broken program fails
// the test instead of hanging it.
const wait = 5 * time.Second

func TestPrintsTheAddressItReallyListensOn(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	// Port 0 asks the kernel for any free port; the program must print
	// the one it got, or nobody could connect.
	_, port, err := net.SplitHostPort(srv.addr)
	require.NoError(t, err)
	assert.NotEqual(t, "0", port)
	conn := dial(t, srv.addr)
	conn.Close()
}

func TestClientsConnectWhileNobodyCallsAccept(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")

	// The program never calls Accept, yet every connect succeeds: the
	// kernel completes the handshake and queues the connection.
	const clients = 16
	conns := make([]net.Conn, clients)
	for i := range conns {
		conns[i] = dial(t, srv.addr)
	}
	// A client may even send: the bytes wait in the kernel's buffer.
	for _, c := range conns {
		_, err := c.Write([]byte("anyone there?\n"))
		require.NoError(t, err)
	}
	// But nothing comes back, because nobody reads. A short deadline
	// stands for "a while": the test proves silence, not a delay.
	require.NoError(t, conns[0].SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err := conns[0].Read(make([]byte, 1))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "nobody accepted, so nobody can answer")
}

func TestSecondCopyOnTheSamePortFailsWithAddressInUse(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")

	// The second copy is refused at bind, even though Go sets
	// SO_REUSEADDR on Unix: that option does not let two sockets listen
	// on one port.
	err := run(context.Background(), []string{"-addr", srv.addr}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	msg := explain(err)
	assert.Contains(t, msg, "another program already listens there; stop it, or choose another -addr")
	assert.Contains(t, msg, "(see docs/errors.md#eaddrinuse)")

	// The first copy is not disturbed: it still takes clients.
	dial(t, srv.addr).Close()
}

func TestAddressInUseIsDetectedWithErrorsIsOnEveryPlatform(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()

	_, err = net.Listen("tcp", ln.Addr().String())
	require.Error(t, err)
	// The error is a chain: *net.OpError, then *os.SyscallError("bind"),
	// then the system's number. errors.Is walks the chain; comparing
	// err.Error() with a string would break with every wording.
	if runtime.GOOS == "windows" {
		// Winsock's WSAEADDRINUSE is 10048, not Go's syscall.EADDRINUSE.
		assert.ErrorIs(t, err, wsaEADDRINUSE)
	} else {
		assert.ErrorIs(t, err, syscall.EADDRINUSE)
	}
	var sysErr *os.SyscallError
	require.ErrorAs(t, err, &sysErr)
	assert.Equal(t, "bind", sysErr.Syscall, "binding is the step that fails")
	assert.Contains(t, explain(err), "(see docs/errors.md#eaddrinuse)")
}

func TestRestartRightAfterAClosedConnectionBindsFine(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Go does not set SO_REUSEADDR on Windows, where the option would let another program take over the port; Windows' own rules for TIME_WAIT are not shown here")
	}
	// A server that closes a connection first keeps it in TIME_WAIT for
	// a minute or more, on the server's own port.
	addr := portInTimeWait(t)

	// The restarted server binds the same port at once, because Go's
	// listener sets SO_REUSEADDR.
	err := run(canceled(), []string{"-addr", addr}, nil, io.Discard, io.Discard)
	assert.NoError(t, err, "a restart should not be blocked by TIME_WAIT")
}

func TestAddressOfAnotherMachineFailsWithAddressNotAvailable(t *testing.T) {
	// 192.0.2.1 is reserved for documentation (RFC 5737): it is never
	// one of this machine's addresses, so it cannot be bound.
	err := run(context.Background(), []string{"-addr", "192.0.2.1:0"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, wsaEADDRNOTAVAIL), "want EADDRNOTAVAIL, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#eaddrnotavail)")
}

func TestPermissionDeniedIsExplained(t *testing.T) {
	// Whether binding port 80 is allowed depends on the user and the
	// system, so this checks only how the error is explained.
	err := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
	assert.Contains(t, explain(err), "(see docs/errors.md#eacces)")
}

func TestInterruptStopsCleanly(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	srv.out.next(t) // "nobody calls Accept here: ..."
	srv.stop()      // what Ctrl+C does
	require.NoError(t, srv.wait(t), "stopping is not an error: exit status 0")

	// The port is free again: a new listener can take it.
	ln, err := net.Listen("tcp", srv.addr)
	require.NoError(t, err)
	ln.Close()
}

func TestBadFlagIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-no-such-flag"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-addr")
}

func TestTelnetSaysConnectedThoughNobodyAccepts(t *testing.T) {
	telnet, err := exec.LookPath("telnet")
	if err != nil {
		t.Skip("telnet is not installed (on Debian: apt-get install telnet); .ci/run installs it")
	}
	srv := startServer(t, "-addr", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(srv.addr)

	// telnet reports the finished handshake; the server never accepted.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stdin, feed := io.Pipe()
	cmd := exec.CommandContext(ctx, telnet, host, port)
	cmd.Stdin = stdin
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Wait()
	defer feed.Close() // telnet quits when its input ends

	output := bufio.NewScanner(stdout)
	for output.Scan() {
		if output.Text() == "Connected to "+host+"." {
			return
		}
	}
	t.Fatalf("telnet did not say %q", "Connected to "+host+".")
}

// The README shows what a learner sees; these tests produce the same
// sessions and compare them line by line, ports aside.

func TestReadmeServerTranscript(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	srv.out.next(t)
	dial(t, srv.addr).Close()
	srv.stop()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "server", srv.out.String())
}

func TestReadmeAddressInUseTranscript(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	err := run(context.Background(), []string{"-addr", srv.addr}, nil, io.Discard, io.Discard)
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

// canceled is a context that is already done: run returns as soon as it
// has listened, as if Ctrl+C came at once.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
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
