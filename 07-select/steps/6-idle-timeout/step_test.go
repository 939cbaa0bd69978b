//go:build linux || darwin

package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Step 6's tests run its serve function in this process, once with each
// back-end where it matters: it waits in the poller, so a server left
// running after a test costs nothing. The Ctrl+C test runs the step as a
// process of its own (this test binary, started again as the program:
// see TestMain), because a signal stops a whole process.

func TestSilentClientIsToldAndClosedAfterIdleTimeout(t *testing.T) {
	for name := range backEnds {
		t.Run(name, func(t *testing.T) {
			addr := start(t, newBackEnd(t, name), 300*time.Millisecond)
			silent := connect(t, addr)
			rest, err := io.ReadAll(silent.r)
			require.NoError(t, err, "want the goodbye and a clean end")
			assert.Equal(t, "bye: idle for 300ms, closing\n", string(rest))

			// A client that keeps talking is not idle, however long it
			// stays: eight messages, 50 ms apart, outlast the timeout.
			busy := connect(t, addr)
			for range 8 {
				busy.echo(t, "still here\n")
				<-time.After(50 * time.Millisecond) // the client's pace, not a wait for an event
			}
		})
	}
}

func TestCtrlCDropsEveryClientWithoutAWord(t *testing.T) {
	// The pitfall the next step fixes. Ctrl+C kills the process: the
	// kernel closes every socket, and each client sees the end, with no
	// goodbye and no reason.
	p := startProgram(t)
	c := connect(t, p.addr)
	c.echo(t, "hello\n")
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	rest, err := io.ReadAll(c.r) // the end, or a reset
	assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the connection should end when the program dies")
	assert.Empty(t, string(rest), "the client is told nothing")
	var exit *exec.ExitError
	require.ErrorAs(t, p.exited(t), &exit, "the program should be killed by the signal, not exit")
	assert.Equal(t, syscall.SIGINT, exit.Sys().(syscall.WaitStatus).Signal())
}

// ---- the machinery ----

// wait bounds every blocking step, so that a broken step fails a test
// instead of hanging it.
const wait = 10 * time.Second

// start runs the step's server with poller p and idleTimeout on a free
// port, logging into a buffer, and returns its address.
func start(t *testing.T, p poller, idleTimeout time.Duration) string {
	t.Helper()
	lfd, err := listen("127.0.0.1:0")
	require.NoError(t, err)
	go serve(lfd, p, idleTimeout, &syncBuffer{})
	return localAddr(lfd)
}

// backEnds builds each poller this platform has, by name.
var backEnds = map[string]func() (poller, error){
	"poll": func() (poller, error) { return newPoll(), nil },
	"best": newBestPoller, // epoll on Linux, kqueue on macOS
}

func newBackEnd(t *testing.T, name string) poller {
	t.Helper()
	p, err := backEnds[name]()
	require.NoError(t, err)
	return p
}

// syncBuffer is a log that the server goroutine and a test may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// testClient is a connection whose greeting has been read.
type testClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func connect(t *testing.T, addr string) *testClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	c := &testClient{conn: conn, r: bufio.NewReader(conn)}
	line, err := c.r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, greeting, line)
	return c
}

// echo sends msg and reads its reply, "OK..." and msg.
func (c *testClient) echo(t *testing.T, msg string) {
	t.Helper()
	_, err := c.conn.Write([]byte(msg))
	require.NoError(t, err)
	reply := make([]byte, len("OK...")+len(msg))
	_, err = io.ReadFull(c.r, reply)
	require.NoError(t, err)
	assert.Equal(t, "OK..."+msg, string(reply))
}

// TestMain lets this test binary be the program itself: startProgram
// runs it again with stepAsProgram set, and then main runs instead of
// the tests.
func TestMain(m *testing.M) {
	if os.Getenv(stepAsProgram) == "1" {
		// The program ends with the test process, however that ends (a
		// test that times out, a Ctrl+C): its stdin is a pipe from that
		// process, and the kernel closes the pipe when the process dies.
		go func() {
			io.Copy(io.Discard, os.Stdin)
			os.Exit(1)
		}()
		main()
		return
	}
	os.Exit(m.Run())
}

const stepAsProgram = "SOCKETSTEPS_STEP_AS_PROGRAM"

// program is the step running as a process of its own.
type program struct {
	cmd   *exec.Cmd
	addr  string
	stdin io.WriteCloser // open as long as this process lives

	done chan struct{} // closed once the program has ended
	err  error         // how it ended, once done is closed

	mu     sync.Mutex
	lines  []string      // what it printed so far
	notify chan struct{} // a new line came (capacity 1)
}

// startProgram runs the step on a free port and waits for it to say
// where it listens.
func startProgram(t *testing.T) *program {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), stepAsProgram+"=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, w := io.Pipe()
	cmd.Stdout = w
	require.NoError(t, startWithDefaultCtrlC(cmd))
	p := &program{cmd: cmd, stdin: stdin, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		// The one Wait. It returns once the program has ended and all it
		// printed has been read.
		p.err = cmd.Wait()
		w.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	go func() {
		// Read every line, so that the program never blocks on stdout.
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, lines.Text())
			p.mu.Unlock()
			select {
			case p.notify <- struct{}{}:
			default:
			}
		}
		io.Copy(io.Discard, stdout) // a line too long for the scanner
	}()
	first := p.waitForLine(t, "listening on ")[0]
	p.addr = strings.TrimPrefix(first, "listening on ")
	return p
}

// waitForLine waits until a line printed so far contains part, and
// returns all the lines up to that one.
func (p *program) waitForLine(t *testing.T, part string) []string {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for i, line := range p.lines {
			if strings.Contains(line, part) {
				lines := slices.Clone(p.lines[:i+1])
				p.mu.Unlock()
				return lines
			}
		}
		p.mu.Unlock()
		select {
		case <-p.notify:
		case <-deadline.C:
			t.Fatalf("the program printed no line containing %q", part)
		}
	}
}

// stop kills the program, if it still runs, and returns the CPU time it
// used in all.
func (p *program) stop(t *testing.T) time.Duration {
	t.Helper()
	p.cmd.Process.Kill() // nothing to do if it has ended
	p.exited(t)
	return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
}

// exited waits for the program to end, and returns how it ended. It
// fails the test if the program runs on.
func (p *program) exited(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(wait):
		t.Fatal("the program did not end")
		return nil
	}
}

// startWithDefaultCtrlC starts cmd so that SIGINT reaches it as Ctrl+C
// in a terminal does. A shell without job control starts its background
// commands with SIGINT ignored, and a child inherits an ignored signal:
// a test binary run that way (built with go test -c, or by a stress
// runner) would start a program that never sees Ctrl+C. (The go command
// itself catches SIGINT, so under go test this cannot happen.) A signal
// that this process catches is reset to its default action in a child,
// so catch SIGINT while the child starts; Stop puts back what was there.
func startWithDefaultCtrlC(cmd *exec.Cmd) error {
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, os.Interrupt)
	defer signal.Stop(caught)
	return cmd.Start()
}
