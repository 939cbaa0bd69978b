//go:build linux || darwin

package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Step 1's tests run the step as a process of its own: this test binary,
// started again as the program (see TestMain). Its busy loop never
// stops, so in this process it would burn CPU for the rest of the tests;
// a process of its own is killed when the test ends, and the kernel says
// how much CPU it used.

func TestBusyLoopServesManyClientsAtOnce(t *testing.T) {
	p := startProgram(t)
	first, second := connect(t, p.addr), connect(t, p.addr)
	second.echo(t, "the second one first\n")
	first.echo(t, "then the first\n")
}

func TestBusyLoopBurnsACoreWhileNobodyIsConnected(t *testing.T) {
	// The pitfall the next step fixes. Nobody is connected, yet the
	// loop asks the kernel again and again, as fast as it can: the
	// process spends its time on the CPU, not asleep. (On a machine
	// this busy, it gets what share of a core it can.) The window is the
	// measurement itself, not a wait for an event.
	const window = 300 * time.Millisecond
	p := startProgram(t)
	<-time.After(window)
	used := p.stop(t)
	t.Logf("CPU used by the busy loop in %v with nobody connected: %v", window, used)
	assert.Greater(t, used, window/10, "the busy loop should burn CPU while idle")
}

func TestReadmeBareProgramTranscript(t *testing.T) {
	p := startProgram(t)
	c := connect(t, p.addr)
	c.echo(t, "hello\n")
	require.NoError(t, c.conn.Close())
	log := p.waitForLine(t, " left")

	// The README's session, "$ " lines and port numbers aside.
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "<!-- transcript: step-1 -->\n```console\n")
	require.True(t, ok, "README.md has no step-1 transcript")
	block, _, _ := strings.Cut(after, "```")
	var want []string
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "$ ") {
			want = append(want, ports.ReplaceAllString(line, "PORT"))
		}
	}
	var got []string
	for _, line := range log {
		got = append(got, ports.ReplaceAllString(line, "PORT"))
	}
	assert.Equal(t, want, got)
}

// ---- the machinery ----

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

// wait bounds every blocking step, so that a broken step fails a test
// instead of hanging it.
const wait = 10 * time.Second

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

var ports = regexp.MustCompile(`127\.0\.0\.1:\d+`)

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
	require.NoError(t, cmd.Start())
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
