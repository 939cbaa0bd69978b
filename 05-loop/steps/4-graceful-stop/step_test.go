package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Step 4's tests run its acceptLoop in this process and cancel its
// context, which is what Ctrl+C does; one builds the step and sends it a
// real SIGINT, to see the exit status.

func TestCtrlCSaysGoodbyeAndStopsCleanly(t *testing.T) {
	ln := listen(t)
	out := newOutput()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- acceptLoop(ctx, ln, config{idle: wait, grace: time.Second}, out) }()
	c := dial(t, ln)
	c.expect(greeting)
	c.send("in the middle of something\n")
	c.expect("OK...in the middle of something\n")

	cancel()
	// The last line, then a clean end of stream, and the loop returns nil.
	c.expect("bye: server shutting down\n")
	_, err := c.r.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
	require.NoError(t, c.conn.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("the loop did not return")
	}
	assert.True(t, strings.HasSuffix(out.String(), "closed at shutdown\nstopped\n"), out.String())
}

func TestCtrlCStopsTheProgramWithExitStatus0(t *testing.T) {
	srv := startProcess(t)
	c := srv.dial(t)
	c.expect(greeting)
	require.NoError(t, srv.cmd.Process.Signal(os.Interrupt))
	c.expect("bye: server shutting down\n")
	require.NoError(t, c.conn.Close())
	assert.NoError(t, srv.exited(t), "exit status 0")
}

func TestTooManyOpenFilesStopsTheServer(t *testing.T) {
	// The pitfall the next step fixes. When the process is out of file
	// descriptors, Accept fails with EMFILE, and this loop gives up,
	// although a descriptor would be free again a moment later. A fake
	// listener fails the way the kernel does, rather than starve the
	// test process of descriptors.
	ln := listen(t)
	fake := &failingListener{Listener: ln, errno: syscall.EMFILE, fails: 1}
	err := acceptLoop(context.Background(), fake, config{idle: wait, grace: time.Second}, newOutput())
	assert.ErrorIs(t, err, syscall.EMFILE, "the server would exit with this error")
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

func (c *client) send(msg string) {
	c.t.Helper()
	_, err := io.WriteString(c.conn, msg)
	require.NoError(c.t, err)
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
	require.NoError(t, cmd.Start())
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

// failingListener fails its first Accepts with errno, the way a kernel
// reports it, then accepts for real. It notes when each Accept was
// called, so that a test can measure the pauses between them.
type failingListener struct {
	net.Listener
	errno syscall.Errno
	mu    sync.Mutex
	fails int
	calls []time.Time
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept", l.errno)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}
