package main

// Step 3's tests call serveOne in this process on a free port, as main
// does, except the one about Ctrl+C: a signal goes to a process, so that
// test builds the step and runs it.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fix for step 2's pitfall: the server stops writing (FIN), reads
// and discards what the client still sends, and only then closes. The
// client gets the echo and a clean end.
func TestTheEchoArrivesWithACleanEndWhenTheClientSentMore(t *testing.T) {
	srv := start(t, func(stdout io.Writer) error { return serveOne("127.0.0.1:0", wait, stdout) })
	conn := dial(t, srv.addr)
	msg := bytes.Repeat([]byte("x"), 3000) // three reads' worth
	_, err := conn.Write(msg)
	require.NoError(t, err)
	require.NoError(t, conn.CloseWrite()) // done sending: the server's drain ends at once

	reply, err := io.ReadAll(conn)
	require.NoError(t, err, "a clean end of stream, not a reset")
	assert.NotEmpty(t, reply)
	assert.Equal(t, msg[:len(reply)], reply, "the echo of the one Read, whole")
	require.NoError(t, srv.wait(t))
	assert.Equal(t, "echoed it back and closed the connection", srv.out.all()[3])
}

// The pitfall, fixed in step 4: Ctrl+C kills the process where it
// stands. The server says nothing and exits with a failure status, as
// if it had crashed, though stopping it is a normal thing to do.
func TestCtrlCKillsTheServerWithoutAWord(t *testing.T) {
	p := startProcess(t)
	rest, err := p.interrupt(t)

	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "want the process killed by the signal")
	assert.NotEqual(t, 0, exit.ExitCode(), "killed, so not a success")
	assert.Empty(t, rest, "no last word")
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

// ---- helpers: the step built and run as a process ----

// Ctrl+C is a signal to a process, so these tests build the step with go
// build into a temporary folder and run it, as a learner's terminal does.

// process is the step running as a program of its own.
type process struct {
	cmd    *exec.Cmd
	addr   string
	stdout *bufio.Scanner
	wait   func() error // cmd.Wait, once, whoever asks first
}

// startProcess builds the step, runs it on a free port and reads its
// first line, the address it listens on.
func startProcess(t *testing.T) *process {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("Go cannot send Ctrl+C to another process on Windows")
	}
	bin := filepath.Join(t.TempDir(), "step")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	pipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, startWithDefaultCtrlC(cmd))
	p := &process{cmd: cmd, stdout: bufio.NewScanner(pipe), wait: sync.OnceValue(cmd.Wait)}
	t.Cleanup(func() {
		cmd.Process.Kill()
		p.wait()
	})
	first := make(chan string, 1)
	go func() {
		p.stdout.Scan()
		first <- p.stdout.Text()
	}()
	select {
	case line := <-first:
		addr, ok := strings.CutPrefix(line, "listening on ")
		require.True(t, ok, "first line should give the address, got %q", line)
		p.addr = addr
	case <-time.After(wait):
		t.Fatal("the step printed nothing")
	}
	return p
}

// interrupt does what Ctrl+C does, then returns the rest of the output
// and how the process ended.
func (p *process) interrupt(t *testing.T) (rest []string, err error) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	type ending struct {
		rest []string
		err  error
	}
	done := make(chan ending, 1)
	go func() {
		var e ending
		for p.stdout.Scan() {
			e.rest = append(e.rest, p.stdout.Text())
		}
		e.err = p.wait()
		done <- e
	}()
	select {
	case e := <-done:
		return e.rest, e.err
	case <-time.After(wait):
		t.Fatal("the step did not end after Ctrl+C")
		return nil, nil
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
