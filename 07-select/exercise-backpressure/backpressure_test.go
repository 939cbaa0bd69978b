//go:build exercise || solution

package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test, so a broken server fails
// the test instead of hanging it.
const wait = 5 * time.Second

// bound is the -max-buffered the tests give the server: small, so that
// going over it shows.
const bound = 32 << 10

// maxFlood is how much a flooding test client sends at most. It stops
// earlier, as soon as the server stops reading it; a server that never
// does has taken 32 MB from a client that read nothing, far more than
// the kernels' buffers hold, so it must have lost replies.
const maxFlood = 32 << 20

func TestEchoesEachChunkAfterOK(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv.addr)
	_, err := io.WriteString(c, "hello\n")
	require.NoError(t, err)
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, greeting, line)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "OK...hello\n", line)
}

func TestClientThatSendsALotBeforeReadingGetsEveryByteBackInOrder(t *testing.T) {
	srv := startServer(t)
	f := startFlood(t, srv)
	// Read only once the server has stopped reading us, or once all
	// is sent: until then, not a byte.
	f.waitPausedOrSent(t)
	back := f.readAll(t)
	sent := f.sent(t)
	same := commonPrefix(back, sent)
	require.Equal(t, len(sent), len(back),
		"sent %d bytes, got %d back (the first %d of them right): replies were lost", len(sent), len(back), same)
	require.Equal(t, len(sent), same, "the replies differ from what was sent from byte %d on", same)
}

func TestRepliesWaitingForAClientNeverExceedMaxBufferedAndItIsNoLongerRead(t *testing.T) {
	srv := startServer(t)
	f := startFlood(t, srv)
	paused := f.waitPausedOrSent(t)
	require.True(t, paused,
		"the server took %d MB from a client that read nothing, and never stopped reading it", maxFlood>>20)
	f.readAll(t)
	f.sent(t)
	assert.LessOrEqual(t, srv.rec.peak(f.peer), bound,
		"bytes waiting in the server for one client, at most")
	assert.Contains(t, srv.out.String(), "client "+f.peer+" is not reading its replies")
}

func TestOtherClientsAreServedPromptlyWhileOneIsHeldBack(t *testing.T) {
	srv := startServer(t)
	f := startFlood(t, srv)
	require.True(t, f.waitPausedOrSent(t), "the server never stopped reading the flooding client")

	// The flood waits, unread; meanwhile others are answered at once.
	for i := 0; i < 5; i++ {
		c := dial(t, srv.addr)
		require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Second)))
		_, err := io.WriteString(c, "am I served?\n")
		require.NoError(t, err)
		r := bufio.NewReader(c)
		for _, want := range []string{greeting, "OK...am I served?\n"} {
			line, err := r.ReadString('\n')
			require.NoError(t, err, "client %d should be answered within two seconds", i+1)
			assert.Equal(t, want, line)
		}
		c.Close()
	}
	f.readAll(t)
	f.sent(t)
}

func TestStopClosesEveryClientAndReturnsNil(t *testing.T) {
	srv := startServer(t)
	c := dial(t, srv.addr)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, greeting, line)
	srv.stop()
	require.NoError(t, srv.wait(t))
	assert.Contains(t, srv.out.String(), "stopped\n")
}

func TestMaxBufferedSmallerThanOneReplyIsAUsageError(t *testing.T) {
	var stderr strings.Builder
	err := run(context.Background(), []string{"-max-buffered", "100"}, io.Discard, &stderr)
	require.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-max-buffered must hold one reply")
}

// The README shows this session: the flood client against the server,
// and what the server printed meanwhile.
func TestReadmeFloodTranscript(t *testing.T) {
	srv := startServer(t)
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 4*wait)
	defer cancel()
	require.NoError(t, run(ctx, []string{"-addr", srv.addr, "-flood", "16000000"}, &out, io.Discard))
	assertTranscript(t, "flood", out.String())
	srv.out.waitFor(t, " left\n")
	srv.stop()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "server", srv.out.String())
}

// ---- the flooding client ----

// flood is a client that sends without reading.
type flood struct {
	conn    *net.TCPConn
	peer    string // its address, as the server logs it
	srv     *server
	written chan int // how much was sent, once the writer is done
	errs    chan error
}

// startFlood connects and starts writing, in a goroutine, until the
// server stops reading this client or maxFlood bytes are sent; then
// it half-closes the connection.
func startFlood(t *testing.T, srv *server) *flood {
	t.Helper()
	conn := dial(t, srv.addr)
	f := &flood{
		conn: conn, peer: conn.LocalAddr().String(), srv: srv,
		written: make(chan int, 1), errs: make(chan error, 1),
	}
	paused := srv.rec.pausedChan(f.peer)
	// The flood repeats floodLine, so one block of it, started at the
	// right offset, is every 64 KiB piece.
	block := floodPayload(64<<10 + len(floodLine))
	go func() {
		sent := 0
		defer func() { f.written <- sent }()
		for sent < maxFlood {
			select {
			case <-paused:
				// Held back: send no more, the test reads now.
				f.errs <- conn.CloseWrite()
				return
			default:
			}
			// A write blocks while the server is not reading us; the
			// test reads then, which lets it go on.
			conn.SetWriteDeadline(time.Now().Add(2 * wait))
			off := sent % len(floodLine)
			n, err := conn.Write(block[off : off+min(64<<10, maxFlood-sent)])
			sent += n
			if err != nil {
				f.errs <- err
				return
			}
		}
		f.errs <- conn.CloseWrite()
	}()
	return f
}

// waitPausedOrSent waits until the server stops reading this client
// (true) or the writer has sent everything (false).
func (f *flood) waitPausedOrSent(t *testing.T) bool {
	t.Helper()
	select {
	case <-f.srv.rec.pausedChan(f.peer):
		return true
	case err := <-f.errs:
		f.errs <- err
		return f.srv.rec.wasPaused(f.peer)
	case <-time.After(2 * wait):
		t.Fatal("the flooding client neither finished nor was held back")
		return false
	}
}

// readAll reads every reply until the server closes, and returns the
// echoed payload (without greeting and "OK..." markers).
func (f *flood) readAll(t *testing.T) []byte {
	t.Helper()
	require.NoError(t, f.conn.SetReadDeadline(time.Now().Add(4*wait)))
	got, err := io.ReadAll(f.conn)
	require.NoError(t, err, "the server should close cleanly after the last reply")
	return payloadOf(got)
}

// sent waits for the writer and returns what it sent.
func (f *flood) sent(t *testing.T) []byte {
	t.Helper()
	select {
	case err := <-f.errs:
		require.NoError(t, err, "sending the flood")
	case <-time.After(wait):
		t.Fatal("the flooding client's writer did not finish")
	}
	return floodPayload(<-f.written)
}

// ---- the server and its test hook ----

// recorder is the test's view into the loop, through config.observe:
// for each client, the most bytes that ever waited for it, and whether
// the loop stopped reading it.
type recorder struct {
	mu     sync.Mutex
	peaks  map[string]int
	paused map[string]chan struct{} // closed once the client is not read
	closed map[string]bool
}

func newRecorder() *recorder {
	return &recorder{peaks: map[string]int{}, paused: map[string]chan struct{}{}, closed: map[string]bool{}}
}

func (r *recorder) observe(peer string, buffered int, reading bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.peaks[peer] = max(r.peaks[peer], buffered)
	if !reading && !r.closed[peer] {
		r.closed[peer] = true
		close(r.chanLocked(peer))
	}
}

func (r *recorder) chanLocked(peer string) chan struct{} {
	if r.paused[peer] == nil {
		r.paused[peer] = make(chan struct{})
	}
	return r.paused[peer]
}

func (r *recorder) pausedChan(peer string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.chanLocked(peer)
}

func (r *recorder) wasPaused(peer string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed[peer]
}

func (r *recorder) peak(peer string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peaks[peer]
}

type server struct {
	addr string
	out  *logWriter
	rec  *recorder
	stop context.CancelFunc
	done chan error
}

// startServer runs the loop on port 0, with -max-buffered set to bound
// and the recorder as its hook, and waits for the address it listens on.
func startServer(t *testing.T) *server {
	t.Helper()
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("the loop calls poll(2) on Unix file descriptors: Linux and macOS only")
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLogWriter(), rec: newRecorder(), stop: cancel, done: make(chan error, 1)}
	cfg := config{addr: "127.0.0.1:0", maxBuffered: bound, observe: srv.rec.observe}
	go func() { srv.done <- serve(ctx, cfg, srv.out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(wait):
			t.Error("server did not stop after cancel")
		}
	})
	first := srv.out.waitFor(t, "\n")
	addr, ok := strings.CutPrefix(strings.TrimSuffix(first, "\n"), "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	srv.addr = addr
	return srv
}

// wait returns the server's result, failing the test if it runs on.
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

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn.(*net.TCPConn)
}

// logWriter keeps what the server prints and lets a test wait for a
// piece of it without sleeping. The starter prints a line per lost
// reply, so it never blocks on a full channel: changed only says
// "look again".
type logWriter struct {
	mu      sync.Mutex
	all     strings.Builder
	changed chan struct{}
}

func newLogWriter() *logWriter { return &logWriter{changed: make(chan struct{}, 1)} }

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.all.Write(p)
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// waitFor waits until the log contains s, and returns the log up to
// and including its first s.
func (w *logWriter) waitFor(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		if before, _, ok := strings.Cut(w.String(), s); ok {
			return before + s
		}
		select {
		case <-w.changed:
		case <-deadline:
			t.Fatalf("the server did not print %q within %v; so far:\n%s", s, wait, w.String())
			return ""
		}
	}
}

var ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]):\d+`)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring "$ " lines and port numbers.
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
