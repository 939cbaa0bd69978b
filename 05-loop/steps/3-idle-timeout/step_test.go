package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Step 3's tests run its acceptLoop in this process, except the one for
// Ctrl+C, which needs a real process to interrupt: it builds the step.

func TestSilentClientIsToldAndClosedAfterTheIdleTimeout(t *testing.T) {
	ln := listen(t)
	out := newOutput()
	go acceptLoop(ln, config{idle: 100 * time.Millisecond}, out)
	silent := dial(t, ln)
	silent.expect(greeting)
	next := dial(t, ln)

	// After 100 ms of silence: the reason, then the end of the stream.
	silent.expect("bye: idle for 100ms, closing\n")
	_, err := silent.r.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
	next.expect(greeting)
	out.waitFor(t, "client "+silent.conn.LocalAddr().String()+" idle, closed\n")
}

func TestCtrlCKillsTheServerWithoutAGoodbye(t *testing.T) {
	// The pitfall the next step fixes. Ctrl+C sends SIGINT, and a Go
	// program that does not ask for it dies of it at once.
	srv := startProcess(t)
	c := srv.dial(t)
	c.expect(greeting)
	require.NoError(t, srv.cmd.Process.Signal(os.Interrupt))

	// The client being served gets no word: the kernel just closes the
	// dead process's socket. And the exit status is not 0.
	rest, err := io.ReadAll(c.r) // a clean end or a reset, as the timing falls
	assert.False(t, isTimeout(err), "the connection should end when the process dies")
	assert.NotContains(t, string(rest), "bye:")
	assert.Error(t, srv.exited(t), "the killed server exited with status 0")
}

// ---- the machinery ----

// wait bounds every blocking step, so that a broken step fails a test
// instead of hanging it.
const wait = 5 * time.Second

// countingListener hands out connections that count their Reads, so that
// a test can see a loop spin. Once the test is over, a Read blocks for
// good: that is what stops a loop that spins.
type countingListener struct {
	net.Listener
	accepted chan *countingConn
	over     chan struct{}
}

func listen(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &countingListener{Listener: ln, accepted: make(chan *countingConn, 16), over: make(chan struct{})}
	t.Cleanup(func() {
		close(l.over)
		ln.Close()
	})
	return l
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &countingConn{Conn: conn, over: l.over}
	select {
	case l.accepted <- c:
	default:
	}
	return c, nil
}

type countingConn struct {
	net.Conn
	reads atomic.Int64
	over  chan struct{}
}

func (c *countingConn) Read(p []byte) (int, error) {
	select {
	case <-c.over:
		select {} // the test is over: stop here for good
	default:
	}
	n, err := c.Conn.Read(p)
	c.reads.Add(1)
	return n, err
}

// client is a test client with a deadline on everything it does.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, ln net.Listener) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// expect reads one line and checks it.
func (c *client) expect(want string) {
	c.t.Helper()
	got, err := c.r.ReadString('\n')
	require.NoError(c.t, err, "waiting for %q", want)
	require.Equal(c.t, want, got)
}

// output records what the server logs. Write never blocks the server:
// it appends under a mutex and wakes a waiter through a channel of
// capacity 1; waiters re-scan with a deadline.
type output struct {
	mu     sync.Mutex
	text   strings.Builder
	notify chan struct{}
}

func newOutput() *output { return &output{notify: make(chan struct{}, 1)} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.text.Write(p)
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.text.String()
}

// waitFor waits until the log contains s, and returns the log.
func (o *output) waitFor(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		if out := o.String(); strings.Contains(out, s) {
			return out
		}
		select {
		case <-o.notify:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("waited %v for %q in the log:\n%s", wait, s, o.String())
		}
	}
}

// process is the step built and running as a program of its own.
type process struct {
	cmd  *exec.Cmd
	addr string
}

// startProcess builds this step into a temporary directory and runs it
// on a free port. Only a real process can be sent Ctrl+C (SIGINT).
func startProcess(t *testing.T) *process {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("a console's Ctrl+C cannot be sent to one process on Windows; checked on Unix")
	}
	bin := filepath.Join(t.TempDir(), "step")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)

	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stdout, w := io.Pipe()
	cmd.Stdout = w
	require.NoError(t, startWithDefaultCtrlC(cmd))
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := bufio.NewScanner(stdout)
	addr := make(chan string, 1)
	go func() {
		if lines.Scan() {
			addr <- strings.TrimPrefix(lines.Text(), "listening on ")
		}
		close(addr)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		require.NotEmpty(t, a, "the step printed no address")
		return &process{cmd: cmd, addr: a}
	case <-time.After(wait):
		t.Fatal("the step printed no address")
		return nil
	}
}

func (p *process) dial(t *testing.T) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", p.addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// exited returns how the process ended, failing the test if it runs on.
func (p *process) exited(t *testing.T) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(wait):
		t.Fatal("the step did not end after Ctrl+C")
		return nil
	}
}

// startWithDefaultCtrlC starts cmd so that SIGINT kills it, as Ctrl+C in
// a terminal does. A shell without job control starts its background
// commands with SIGINT ignored, and a child inherits an ignored signal:
// a test binary run that way (built with go test -c, or by a stress
// runner) would start a step that does not die. (The go command itself
// catches SIGINT, so under go test this cannot happen.) A signal that
// this process catches is reset to its default action in a child, so
// catch SIGINT while the child starts; Stop puts back what was there.
func startWithDefaultCtrlC(cmd *exec.Cmd) error {
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, os.Interrupt)
	defer signal.Stop(caught)
	return cmd.Start()
}
