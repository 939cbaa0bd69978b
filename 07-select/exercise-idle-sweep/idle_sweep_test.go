//go:build exercise || solution

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test, so a broken server fails
// the test instead of hanging it.
const wait = 5 * time.Second

// ---- the sweeper alone, with a clock the test holds: every platform ----

// t0 is the tests' "now"; the sweeper only compares times it is given.
var t0 = time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)

const idle = 10 * time.Second

func peers(cs []*conn) []string {
	names := []string{}
	for _, c := range cs {
		names = append(names, c.peer)
	}
	return names
}

func TestSweeperWithoutClientsHasNoDeadline(t *testing.T) {
	s := newSweeper(idle)
	_, ok := s.next()
	assert.False(t, ok, "no client, no deadline: the loop may sleep for ever")
	assert.Empty(t, s.expired(t0.Add(time.Hour)))
}

func TestNextDeadlineIsTheEarliestClientsLastActivityPlusIdle(t *testing.T) {
	s := newSweeper(idle)
	s.add(&conn{peer: "a"}, t0)
	s.add(&conn{peer: "b"}, t0.Add(time.Second))
	next, ok := s.next()
	require.True(t, ok)
	assert.Equal(t, t0.Add(idle), next)
}

func TestExpiredHandsOutDueClientsEarliestFirstAndForgetsThem(t *testing.T) {
	s := newSweeper(idle)
	a, b, c := &conn{peer: "a"}, &conn{peer: "b"}, &conn{peer: "c"}
	s.add(a, t0)
	s.add(b, t0.Add(1*time.Second))
	s.add(c, t0.Add(2*time.Second))

	assert.Empty(t, peers(s.expired(t0.Add(idle-time.Nanosecond))), "nobody is due yet")
	// A deadline that is exactly now counts as passed.
	assert.Equal(t, []string{"a", "b"}, peers(s.expired(t0.Add(idle+time.Second))))
	assert.Empty(t, peers(s.expired(t0.Add(idle+time.Second))), "handed out once only")
	next, ok := s.next()
	require.True(t, ok)
	assert.Equal(t, t0.Add(2*time.Second+idle), next, "c is the one left")
}

func TestTouchedClientsDeadlineMovesBehindEveryoneElse(t *testing.T) {
	s := newSweeper(idle)
	a, b, c := &conn{peer: "a"}, &conn{peer: "b"}, &conn{peer: "c"}
	s.add(a, t0)
	s.add(b, t0.Add(1*time.Second))
	s.add(c, t0.Add(2*time.Second))
	s.touch(a, t0.Add(3*time.Second)) // a spoke

	next, ok := s.next()
	require.True(t, ok)
	assert.Equal(t, t0.Add(1*time.Second+idle), next, "b is now the first to go")
	assert.Equal(t, []string{"b", "c"}, peers(s.expired(t0.Add(2*time.Second+idle))))
	assert.Equal(t, []string{"a"}, peers(s.expired(t0.Add(3*time.Second+idle))))
}

func TestRemovedClientNeverExpiresAndRemovingTwiceIsHarmless(t *testing.T) {
	s := newSweeper(idle)
	a, b := &conn{peer: "a"}, &conn{peer: "b"}
	s.add(a, t0)
	s.add(b, t0)
	s.remove(a)
	s.remove(a)
	assert.Equal(t, []string{"b"}, peers(s.expired(t0.Add(idle))))
	s.remove(b) // handed out already: nothing happens
	_, ok := s.next()
	assert.False(t, ok)
}

func TestTenThousandClientsExpireInTheOrderOfTheirLastActivity(t *testing.T) {
	s := newSweeper(idle)
	rng := rand.New(rand.NewSource(1))
	clients := make([]*conn, 10000)
	last := map[*conn]time.Time{}
	for i := range clients {
		clients[i] = &conn{peer: fmt.Sprint(i)}
		last[clients[i]] = t0.Add(time.Duration(i) * time.Millisecond)
		s.add(clients[i], last[clients[i]])
	}
	// Activity in random order, each later than everything before.
	now := t0.Add(time.Minute)
	for i := 0; i < 20000; i++ {
		c := clients[rng.Intn(len(clients))]
		now = now.Add(time.Millisecond)
		s.touch(c, now)
		last[c] = now
	}
	want := append([]*conn(nil), clients...)
	sort.Slice(want, func(i, j int) bool { return last[want[i]].Before(last[want[j]]) })

	got := s.expired(now.Add(idle))
	require.Equal(t, len(want), len(got), "every client expires exactly once")
	assert.Equal(t, peers(want), peers(got))
}

// ---- the loop: Linux and macOS ----

func TestSilentClientIsToldAndClosedAfterIdleTimeout(t *testing.T) {
	srv := startServer(t, 200*time.Millisecond)
	start := time.Now() // before the server can have accepted us
	c, r := connect(t, srv.addr)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(3*time.Second)))
	rest, err := io.ReadAll(r)
	require.NoError(t, err, "want the bye line and a clean close")
	assert.Equal(t, "bye: idle for 200ms, closing\n", string(rest))
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "closed before it was idle for -idle-timeout")
	srv.out.waitFor(t, "client "+c.LocalAddr().String()+" idle, closed\n")
}

func TestClientThatKeepsTalkingIsNotClosed(t *testing.T) {
	srv := startServer(t, 400*time.Millisecond)
	c, r := connect(t, srv.addr)
	// Twelve messages 50 ms apart: 600 ms in all, more than
	// -idle-timeout, but never 400 ms of silence.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 12; i++ {
		<-tick.C
		_, err := fmt.Fprintf(c, "message %d\n", i)
		require.NoError(t, err)
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("OK...message %d\n", i), line, "a talking client must not be closed")
	}
}

func TestHundredsOfSilentClientsAreAllClosedOnTime(t *testing.T) {
	srv := startServer(t, 300*time.Millisecond)
	const n = 200
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		c, r := connect(t, srv.addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(4 * time.Second))
			rest, err := io.ReadAll(r)
			assert.NoError(t, err)
			assert.Equal(t, "bye: idle for 300ms, closing\n", string(rest))
		}()
	}
	wg.Wait()
}

func TestLoopSleepsUntilTheNextDeadlineInsteadOfTicking(t *testing.T) {
	srv := startServer(t, 300*time.Millisecond)
	c, r := connect(t, srv.addr)
	before := srv.waits.Load()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(3*time.Second)))
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "bye: idle for 300ms, closing\n", string(rest))
	// One sleep until the deadline, one round to close; a few more for
	// signals that interrupt poll. A loop that wakes every few
	// milliseconds to look would need dozens.
	assert.LessOrEqual(t, srv.waits.Load()-before, int64(8),
		"times the loop woke up while one client was silent for 300ms")
}

func TestStopClosesEveryClientAndReturnsNil(t *testing.T) {
	srv := startServer(t, time.Minute)
	connect(t, srv.addr)
	srv.stop()
	require.NoError(t, srv.wait(t))
	assert.Contains(t, srv.out.String(), "stopped\n")
}

func TestNonPositiveIdleTimeoutIsAUsageError(t *testing.T) {
	var stderr strings.Builder
	err := run(context.Background(), []string{"-idle-timeout", "0s"}, io.Discard, &stderr)
	require.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-idle-timeout must be positive")
}

// The README shows a silent client's session, and the server's log.
func TestReadmeTranscript(t *testing.T) {
	srv := startServer(t, 300*time.Millisecond)
	c, err := net.DialTimeout("tcp", srv.addr, wait)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(wait)))
	all, err := io.ReadAll(c)
	require.NoError(t, err)
	assertTranscript(t, "client", string(all))
	srv.out.waitFor(t, "idle, closed\n")
	srv.stop()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "server", srv.out.String())
}

// ---- helpers ----

type server struct {
	addr  string
	out   *logWriter
	waits atomic.Int64 // how many times the loop went to sleep in poll
	stop  context.CancelFunc
	done  chan error
}

// startServer runs the loop on port 0 with the given -idle-timeout,
// counting its sleeps, and waits for the address it listens on.
func startServer(t *testing.T, idle time.Duration) *server {
	t.Helper()
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("the loop calls poll(2) on Unix file descriptors: Linux and macOS only")
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLogWriter(), stop: cancel, done: make(chan error, 1)}
	cfg := config{addr: "127.0.0.1:0", idle: idle, onWait: func(time.Duration) { srv.waits.Add(1) }}
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

// connect dials and reads the greeting.
func connect(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, greeting, line)
	return conn, r
}

// logWriter keeps what the server prints and lets a test wait for a
// piece of it without sleeping.
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
