package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// ---- helpers ----

// fixed is a clock stopped at t.
func fixed(t time.Time) func() time.Time {
	return func() time.Time { return t }
}

// stepping is a clock that shows each of times in turn, then stays on
// the last one.
func stepping(times ...time.Time) func() time.Time {
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := times[0]
		if len(times) > 1 {
			times = times[1:]
		}
		return t
	}
}

func wire(v uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, v)
}

// server is the program running in this test process, as `go run` would
// run it, with its output captured line by line.
type server struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program with the clock now and args, and waits
// for it to print the address it listens on.
func startServer(t *testing.T, now func() time.Time, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLines(), stop: cancel, done: make(chan error, 1)}
	go func() { srv.done <- runWithClock(ctx, now, args, srv.out, io.Discard) }()
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

// ask runs the program (usually with -client) and returns what it
// printed on stdout and stderr.
func ask(t *testing.T, now func() time.Time, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var out, errOut bytes.Buffer
	err = runWithClock(ctx, now, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// exchange sends one datagram to addr and returns the reply.
func exchange(t *testing.T, addr string, request []byte) []byte {
	t.Helper()
	conn := dialUDP(t, addr)
	_, err := conn.Write(request)
	require.NoError(t, err)
	buf := make([]byte, maxDatagram)
	n, err := conn.Read(buf)
	require.NoError(t, err)
	return buf[:n]
}

func dialUDP(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("udp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// silentPeer is a UDP socket that receives and never answers, as a
// server behind a lossy network looks to a client.
func silentPeer(t *testing.T) net.PacketConn {
	t.Helper()
	conn, err := nettest.NewLocalPacketListener("udp4")
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// countDatagrams reads what has queued up at peer. Every datagram sent
// before this call is already there (loopback delivers at once), so a
// short wait that sees nothing more means there is nothing more.
func countDatagrams(t *testing.T, peer net.PacketConn) int {
	t.Helper()
	buf := make([]byte, maxDatagram)
	count := 0
	for {
		require.NoError(t, peer.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
		_, _, err := peer.ReadFrom(buf)
		if isTimeout(err) {
			return count
		}
		require.NoError(t, err)
		count++
	}
}

// fakeServer answers the i-th datagram (from 1) with reply(i), or not at
// all when that is nil. It returns its address.
func fakeServer(t *testing.T, reply func(i int) []byte) string {
	t.Helper()
	conn := silentPeer(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxDatagram)
		for i := 1; ; i++ {
			_, from, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed by Cleanup
			}
			if r := reply(i); r != nil {
				conn.WriteTo(r, from)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return conn.LocalAddr().String()
}

// closedUDPPort returns an address where no UDP socket is bound: a port
// that was just free and has been closed again.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	conn, err := nettest.NewLocalPacketListener("udp4")
	require.NoError(t, err)
	addr := conn.LocalAddr().String()
	require.NoError(t, conn.Close())
	return addr
}

// runRdate runs the real rdate with a time limit (rdate -u waits
// forever for a reply that never comes) and the time zone set to UTC.
func runRdate(t *testing.T, rdate string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, rdate, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lines records what the program prints, line by line, so a test can
// wait for the next line instead of sleeping. Write never blocks and
// never drops a line: it appends under the mutex, then wakes a waiter
// through a channel of one slot without waiting on it.
type lines struct {
	mu     sync.Mutex
	all    strings.Builder
	part   string
	done   []string // the complete lines so far
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
	default: // a wake-up is already pending
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// next returns the next line that has not been returned yet, waiting
// for it up to wait.
func (l *lines) next(t *testing.T) string {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
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
		case <-timer.C:
			t.Fatalf("no line printed within %v; so far:\n%s", wait, l.String())
			return ""
		}
	}
}

// waitFor returns the next line that contains want, skipping others.
func (l *lines) waitFor(t *testing.T, want string) string {
	t.Helper()
	for {
		if line := l.next(t); strings.Contains(line, want) {
			return line
		}
	}
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
		t.Skipf("%s is not installed (on Debian: apt-get install %s); .ci/run installs it", name, name)
	}
	return path
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

// answered stops the server and returns how many datagrams it says it
// answered, from its last line.
func (s *server) answered(t *testing.T) int {
	t.Helper()
	s.stop()
	require.NoError(t, s.wait(t))
	log := s.out.String()
	_, count, ok := strings.Cut(log, "stopped; datagrams answered: ")
	require.True(t, ok, "no stop line in:\n%s", log)
	n, err := strconv.Atoi(strings.TrimSpace(count))
	require.NoError(t, err)
	return n
}

// noReply checks that nothing arrives on conn within d. Waiting is the
// point: a reply, had there been one, would come back from loopback in
// well under d.
func noReply(t *testing.T, conn net.Conn, d time.Duration) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(d)))
	n, err := conn.Read(make([]byte, maxDatagram))
	assert.True(t, isTimeout(err), "want no reply, got %d bytes (err %v)", n, err)
}

// loopWindow is how long the loop tests let a loop run before they
// count it: on loopback a looping server answers itself thousands of
// times in it, and a server without the loop has long been idle.
const loopWindow = 100 * time.Millisecond

// during lets d pass, failing the test if the server stops meanwhile.
func (s *server) during(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-s.done:
		s.done <- err
		t.Fatalf("the server stopped: %v", err)
	case <-timer.C:
	}
}

// privilegedSocket binds a UDP socket on loopback to a port below 1024,
// where services such as echo live, or skips the test where this user
// may not.
func privilegedSocket(t *testing.T) net.PacketConn {
	t.Helper()
	var last error
	for port := 1023; port >= 1000; port-- {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			t.Cleanup(func() { conn.Close() })
			return conn
		}
		last = err
	}
	t.Skipf("cannot bind a port below 1024 here (needs root, or CAP_NET_BIND_SERVICE): %v", last)
	return nil
}

// stuckWriter is a stdout whose reader has gone away after the first
// line: every later Write blocks until release, as on a pipe whose
// reader has paused.
type stuckWriter struct {
	first   chan string
	blocked chan struct{} // closed once a Write is waiting
	gate    chan struct{} // closed by release
	after   *lines        // what was written after the first line
	mu      sync.Mutex
	writes  int
	once    sync.Once
}

func newStuckWriter() *stuckWriter {
	return &stuckWriter{
		first:   make(chan string, 1),
		blocked: make(chan struct{}),
		gate:    make(chan struct{}),
		after:   newLines(),
	}
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	first := w.writes == 1
	w.mu.Unlock()
	if first {
		w.first <- string(p)
		return len(p), nil
	}
	w.once.Do(func() { close(w.blocked) })
	<-w.gate
	return w.after.Write(p)
}

// firstLine returns the line that went through.
func (w *stuckWriter) firstLine(t *testing.T) string {
	t.Helper()
	select {
	case line := <-w.first:
		return strings.TrimSuffix(line, "\n")
	case <-time.After(wait):
		t.Fatal("nothing was written")
		return ""
	}
}

// waitBlocked returns once a Write is stuck.
func (w *stuckWriter) waitBlocked(t *testing.T) {
	t.Helper()
	select {
	case <-w.blocked:
	case <-time.After(wait):
		t.Fatal("no Write got stuck")
	}
}

// release lets every Write through, from now on.
func (w *stuckWriter) release() { close(w.gate) }

func (w *stuckWriter) waitFor(t *testing.T, want string) string {
	t.Helper()
	return w.after.waitFor(t, want)
}

func (w *stuckWriter) rest() string { return w.after.String() }
