//go:build linux || darwin

package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Step 8's tests run the step as a process of its own (this test binary,
// started again as the program: see TestMain), because the limit on open
// files belongs to a whole process, and its serve function in this
// process, once with each back-end.

func TestRunningOutOfDescriptorsPausesAcceptingInsteadOfSpinning(t *testing.T) {
	// The fix for step 7. With 32 descriptors, the server accepts some
	// 25 of 40 clients; the rest wait in the backlog. The loop now stops
	// watching the listener and tries again later, so it costs next to
	// no CPU; once the first 30 clients leave, the last is greeted.
	// Each run is compared with the same clients and no limit: both pay
	// for starting the program and taking the clients. A loop that spun
	// through the period would use most of a core for all of it; one
	// that pauses uses next to nothing. The margin, a third of the
	// period, leaves room for a busy machine's noise (a -race run of the
	// whole suite once added 40 ms) and still catches a spin that got
	// only a third of a core.
	const period = 300 * time.Millisecond
	run := func(env ...string) (cpu time.Duration, log []string) {
		p := startProgram(t, env...)
		conns := make([]net.Conn, 40)
		for i := range conns {
			conn, err := net.DialTimeout("tcp", p.addr, wait)
			require.NoError(t, err)
			t.Cleanup(func() { conn.Close() })
			conns[i] = conn
		}
		<-time.After(period) // the measurement period, not a wait for an event
		for _, conn := range conns[:30] {
			conn.Close()
		}
		last := &testClient{conn: conns[39], r: bufio.NewReader(conns[39])}
		require.NoError(t, last.conn.SetDeadline(time.Now().Add(wait)))
		line, err := last.r.ReadString('\n')
		require.NoError(t, err, "the last client should be greeted once descriptors are free")
		require.Equal(t, greeting, line)
		log = p.waitForLine(t, "client "+last.conn.LocalAddr().String()+" connected")
		return p.stop(t), log
	}
	calm, _ := run()
	limited, log := run(descriptorLimit + "=32")
	t.Logf("CPU used with 40 clients: %v; with 32 descriptors: %v", calm, limited)
	assert.Less(t, limited, calm+period/3, "the loop should not spin while descriptors are short")
	var retries int
	for _, line := range log {
		if strings.Contains(line, "too many open files; retrying with a growing pause") {
			retries++
		}
	}
	assert.Equal(t, 1, retries, "the trouble is logged once:\n%s", strings.Join(log, "\n"))
}

func TestStopSaysGoodbyeWithEveryBackEnd(t *testing.T) {
	for name := range backEnds {
		t.Run(name, func(t *testing.T) {
			addr, stop := start(t, newBackEnd(t, name), time.Minute)
			c := connect(t, addr)
			c.echo(t, "mid-conversation\n")
			stop()
			rest, err := io.ReadAll(c.r)
			require.NoError(t, err, "want a clean end")
			assert.Equal(t, byeShutdown, string(rest))
		})
	}
}

func TestIdleLoopSleepsInABlockingSystemCall(t *testing.T) {
	// The pitfall that step 9 fixes, for epoll. With nobody connected,
	// the loop waits inside epoll_wait (kevent on macOS) until something
	// happens: a system call that blocks its thread, shown as [syscall]
	// in a goroutine dump. Go's scheduler cannot tell such a call from a
	// stuck one, so its monitor takes the processor from the waiting
	// thread and wakes another, and every return from the wait has to
	// win a processor back: context switches, paid on the wake-ups of a
	// busy server too.
	start(t, newBackEnd(t, "best"), time.Minute)
	state, stack := loopWaitState(t)
	assert.Equal(t, "syscall", state, "the idle loop should wait inside a system call:\n%s", stack)
	assert.Regexp(t, `unix\.(EpollWait|Kevent)\(`, stack, "the system call should be the poller's wait")
}

// ---- the machinery ----

// wait bounds every blocking step, so that a broken step fails a test
// instead of hanging it.
const wait = 10 * time.Second

// start runs the step's server with poller p and idleTimeout on a free
// port, logging into a buffer. It returns the address, and stop, which
// does what Ctrl+C does and waits for serve to return.
func start(t *testing.T, p poller, idleTimeout time.Duration) (addr string, stop func()) {
	t.Helper()
	lfd, err := listen("127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve(ctx, lfd, p, idleTimeout, time.Second, &syncBuffer{})
	}()
	stop = func() {
		t.Helper()
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("serve did not return after the stop")
		}
	}
	t.Cleanup(stop)
	return localAddr(lfd), stop
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

// loopWaitState waits until serve's goroutine is blocked in the poller's
// wait, and says how, with its stack: "syscall", a thread asleep in the
// kernel for it, or "IO wait", parked in Go's runtime poller, as the
// goroutine of a net.Conn read is. It reads the goroutine dump that
// runtime/pprof writes (what /debug/pprof/goroutine?debug=2 shows).
// Whatever the goroutine passes through on its way (running, runnable,
// a system call that does not wait) is not an answer: it looks again.
func loopWaitState(t *testing.T) (state, stack string) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	again := time.NewTicker(time.Millisecond)
	defer again.Stop()
	var last string
	for {
		var dump bytes.Buffer
		require.NoError(t, pprof.Lookup("goroutine").WriteTo(&dump, 2))
		for _, g := range strings.Split(dump.String(), "\n\n") {
			m := goroutineHeader.FindStringSubmatch(g)
			if m == nil || !serveFrame.MatchString(g) || !pollerWaitFrame.MatchString(g) {
				continue
			}
			last = g
			state := m[1]
			if state == "IO wait" || state == "syscall" && !askFrame.MatchString(g) {
				return state, g
			}
		}
		select {
		case <-again.C:
		case <-deadline.C:
			t.Fatalf("serve's goroutine did not settle in the poller's wait within %v; last seen:\n%s", wait, last)
		}
	}
}

var (
	goroutineHeader = regexp.MustCompile(`^goroutine \d+ [^\[]*\[([^\],]+)`)
	serveFrame      = regexp.MustCompile(`(?m)^[^\s(]+\.serve\(`)
	pollerWaitFrame = regexp.MustCompile(`\.\(\*(epoller|kqueuePoller)\)\.wait\(`)
	// askFrame is a poller asking without waiting (step 9's epoller.poll).
	askFrame = regexp.MustCompile(`\.\(\*epoller\)\.poll\(`)
)

// TestMain lets this test binary be the program itself: startProgram
// runs it again with stepAsProgram set, and then main runs instead of
// the tests.
// With descriptorLimit set, the program runs with that limit on its
// open files (RLIMIT_NOFILE), as `ulimit -n` would set it.
func TestMain(m *testing.M) {
	if os.Getenv(stepAsProgram) == "1" {
		// The program ends with the test process, however that ends (a
		// test that times out, a Ctrl+C): its stdin is a pipe from that
		// process, and the kernel closes the pipe when the process dies.
		go func() {
			io.Copy(io.Discard, os.Stdin)
			os.Exit(1)
		}()
		if n, err := strconv.Atoi(os.Getenv(descriptorLimit)); err == nil {
			var lim unix.Rlimit
			unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
			lim.Cur = uint64(n)
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
				panic(err)
			}
		}
		main()
		return
	}
	os.Exit(m.Run())
}

const (
	stepAsProgram   = "SOCKETSTEPS_STEP_AS_PROGRAM"
	descriptorLimit = "SOCKETSTEPS_STEP_NOFILE"
)

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
func startProgram(t *testing.T, env ...string) *program {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-addr", "127.0.0.1:0")
	cmd.Env = append(append(os.Environ(), stepAsProgram+"=1"), env...)
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
