//go:build exercise || solution

package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test, so a broken server fails the
// test instead of hanging it.
const wait = 5 * time.Second

// names are the counters a report holds, in this order.
var names = []string{"clients_now", "clients_total", "bytes_in", "bytes_out", "uptime_seconds"}

func TestEveryOtherLineIsStillAnsweredWithOK(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	// Only the whole line "stats" is a command.
	for _, line := range []string{"hello", "show stats", "statistics", "stats please", "STATS"} {
		c.echo(t, line)
	}
}

func TestTheEndOfALineOverTheLimitIsNeverTheStatsCommand(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	// 4,096 bytes fill the server's buffer: the rest of the line,
	// "stats", comes in a piece of its own. It is the end of a long
	// line, not a line, and comes back as any piece does.
	for _, line := range []string{strings.Repeat("x", 4096) + "stats", strings.Repeat("y", 4096) + "stats\r"} {
		c.echo(t, line)
	}
	c.echo(t, strings.Repeat("z", 3*4096)+"stats")
	c.expectSilence(t)
}

func TestStatsAnswersOneNameValuePerLineThenEND(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	report := c.stats(t)
	assert.Equal(t, names, report.names, "the counters, in this order")
	// END is the last line: the server now waits for the next one.
	c.expectSilence(t)
	// The conversation goes on after a report.
	c.echo(t, "and now?")
}

func TestStatsWorksWithTelnetLineEndings(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	// telnet ends each line with "\r\n".
	report := c.statsWith(t, "stats\r\n")
	assert.Equal(t, names, report.names)
}

func TestBytesCountEveryByteOfTheConversationExactly(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.echo(t, "hello")
	c.echo(t, strings.Repeat("x", 10_000)) // answered in pieces

	// bytes_in counts every byte received, the "stats" line that asked
	// included; bytes_out every byte sent before this report: the
	// greeting and the replies.
	first := c.stats(t)
	assert.Equal(t, c.sent, first.values["bytes_in"], "bytes_in")
	assert.Equal(t, first.receivedBefore, first.values["bytes_out"], "bytes_out")

	// The next report counts the first one and its question.
	second := c.stats(t)
	assert.Equal(t, c.sent, second.values["bytes_in"], "bytes_in")
	assert.Equal(t, first.values["bytes_out"]+first.size, second.values["bytes_out"], "bytes_out")
	assert.Equal(t, int64(1), second.values["clients_now"])
	assert.Equal(t, int64(1), second.values["clients_total"])
}

func TestClientsNowAndTotalFollowClientsComingAndGoing(t *testing.T) {
	srv := startServer(t)
	a := connect(t, srv.addr)
	assertClients(t, a.stats(t), 1, 1)

	// A client that has read its greeting is counted.
	b := connect(t, srv.addr)
	connect(t, srv.addr)
	assertClients(t, a.stats(t), 3, 3)

	// The server counts b gone a moment after b closes: nothing tells a
	// when, so a asks again until it sees it, within the deadline.
	require.NoError(t, b.Close())
	report := a.statsUntil(t, "clients_now 2", func(r report) bool { return r.values["clients_now"] == 2 })
	assertClients(t, report, 2, 3)

	connect(t, srv.addr)
	assertClients(t, a.stats(t), 3, 4)
}

func TestCountersStayExactWithManyClientsAtOnce(t *testing.T) {
	srv := startServer(t)
	observer := connect(t, srv.addr)

	// 20 clients talk at the same time, then leave. Each counter is
	// changed by all their goroutines at once: with a plain int, updates
	// get lost (and go test -race reports the data race).
	const clients, lines = 20, 10
	var sent, received atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, m, err := talk(srv.addr, lines)
			sent.Add(n)
			received.Add(m)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	report := observer.statsUntil(t, "clients_now 1", func(r report) bool { return r.values["clients_now"] == 1 })
	assertClients(t, report, 1, clients+1)
	assert.Equal(t, sent.Load()+observer.sent, report.values["bytes_in"], "bytes_in")
	assert.Equal(t, received.Load()+report.receivedBefore, report.values["bytes_out"], "bytes_out")
}

func TestUptimeCountsWholeSecondsSinceStart(t *testing.T) {
	// A clock the test moves by hand, so no test waits for a second.
	start := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	var elapsed atomic.Int64
	out := newLines()
	srv := newServer(out, time.Minute, time.Second)
	srv.now = func() time.Time { return start.Add(time.Duration(elapsed.Load())) }
	addr := serveInTest(t, out, func(ctx context.Context) error {
		return srv.serve(ctx, "127.0.0.1:0", 10)
	})
	c := connect(t, addr)

	for _, step := range []struct {
		elapsed time.Duration
		want    int64
	}{
		{0, 0},
		{999 * time.Millisecond, 0},
		{1500 * time.Millisecond, 1},
		{61*time.Second + 700*time.Millisecond, 61},
		{26 * time.Hour, 93600},
	} {
		elapsed.Store(int64(step.elapsed))
		assert.Equal(t, step.want, c.stats(t).values["uptime_seconds"], "after %v", step.elapsed)
	}
}

func assertClients(t testing.TB, r report, now, total int64) {
	t.Helper()
	assert.Equal(t, now, r.values["clients_now"], "clients_now")
	assert.Equal(t, total, r.values["clients_total"], "clients_total")
}

// talk connects, has lines lines echoed, and leaves. It reports how many
// bytes it sent and received. It runs in its own goroutine, so it
// returns an error instead of failing the test.
func talk(addr string, lines int) (sent, received int64, err error) {
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(wait)); err != nil {
		return 0, 0, err
	}
	r := bufio.NewReader(conn)
	got, err := r.ReadString('\n')
	received += int64(len(got))
	if err != nil {
		return sent, received, err
	}
	for i := 0; i < lines; i++ {
		line := "line " + strconv.Itoa(i) + " from " + conn.LocalAddr().String() + "\n"
		n, err := io.WriteString(conn, line)
		sent += int64(n)
		if err != nil {
			return sent, received, err
		}
		got, err := r.ReadString('\n')
		received += int64(len(got))
		if err != nil {
			return sent, received, err
		}
		if got != "OK..."+line {
			return sent, received, errors.New("want the echo of " + strconv.Quote(line) + ", got " + strconv.Quote(got))
		}
	}
	return sent, received, nil
}

// client is a test client that counts the bytes it sends and receives.
type client struct {
	net.Conn
	r        *bufio.Reader
	sent     int64
	received int64
}

// connect dials addr and reads the greeting.
func connect(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	c := &client{Conn: conn, r: bufio.NewReader(conn)}
	require.Equal(t, greeting, c.line(t))
	return c
}

func (c *client) send(t testing.TB, s string) {
	t.Helper()
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(wait)))
	n, err := io.WriteString(c, s)
	c.sent += int64(n)
	require.NoError(t, err)
}

// line reads one line, with its "\n", within wait.
func (c *client) line(t testing.TB) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	line, err := c.r.ReadString('\n')
	c.received += int64(len(line))
	require.NoError(t, err, "reading a line, got %q so far", line)
	return line
}

// echo sends one line and checks it comes back after "OK...". A line
// longer than the server's buffer comes back in several pieces.
func (c *client) echo(t testing.TB, line string) {
	t.Helper()
	c.send(t, line+"\n")
	want := line + "\n"
	for want != "" {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
		prefix := make([]byte, len("OK..."))
		_, err := io.ReadFull(c.r, prefix)
		require.NoError(t, err)
		c.received += int64(len(prefix))
		require.Equal(t, "OK...", string(prefix), "the echo of %.40q", line)
		piece := make([]byte, min(len(want), 4096))
		_, err = io.ReadFull(c.r, piece)
		require.NoError(t, err)
		c.received += int64(len(piece))
		require.Equal(t, want[:len(piece)], string(piece), "the echo of %.40q", line)
		want = want[len(piece):]
	}
}

// expectSilence checks that nothing more arrives. Nothing can prove a
// line will never come; 50 ms is ample on loopback for one that was
// already on its way.
func (c *client) expectSilence(t testing.TB) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	line, err := c.r.ReadString('\n')
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "want nothing more, got %q (%v)", line, err)
}

// report is one answer to stats.
type report struct {
	names  []string
	values map[string]int64
	// size is the report's length in bytes; receivedBefore is how many
	// bytes the client had received before it.
	size, receivedBefore int64
}

var nameValue = regexp.MustCompile(`^([a-z_]+) (\d+)\n$`)

// stats asks for stats and reads the report.
func (c *client) stats(t testing.TB) report {
	t.Helper()
	return c.statsWith(t, "stats\n")
}

func (c *client) statsWith(t testing.TB, ask string) report {
	t.Helper()
	c.send(t, ask)
	r := report{values: make(map[string]int64), receivedBefore: c.received}
	for {
		line := c.line(t)
		if line == "END\n" {
			break
		}
		m := nameValue.FindStringSubmatch(line)
		require.NotNil(t, m, "want a line \"name value\" or END, got %q", line)
		require.Less(t, len(r.names), 20, "a report without END")
		v, err := strconv.ParseInt(m[2], 10, 64)
		require.NoError(t, err)
		r.names = append(r.names, m[1])
		r.values[m[1]] = v
	}
	r.size = c.received - r.receivedBefore
	return r
}

// statsUntil asks for stats until ok accepts the report, within wait.
func (c *client) statsUntil(t testing.TB, what string, ok func(report) bool) report {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		r := c.stats(t)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report with %s within %v; the last: %v", what, wait, r.values)
		}
	}
}

// testServer is the program running in this process.
type testServer struct {
	addr string
	out  *lines
}

// startServer runs the program on a free port with the extra flags in
// args, and waits for it to print the address it listens on. The server
// is stopped, and waited for, when the test ends.
func startServer(t testing.TB, args ...string) *testServer {
	t.Helper()
	srv := &testServer{out: newLines()}
	args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	srv.addr = serveInTest(t, srv.out, func(ctx context.Context) error {
		return run(ctx, args, srv.out, io.Discard)
	})
	return srv
}

// serveInTest runs serve until the test ends, and returns the address
// from the first line it prints to out.
func serveInTest(t testing.TB, out *lines, serve func(ctx context.Context) error) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "shutdown is not an error")
		case <-time.After(2 * wait):
			t.Error("server did not stop after cancel")
		}
	})
	first := out.next(t)
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	return addr
}

// lines is an io.Writer that keeps each complete line, so a test can wait
// for a line instead of sleeping. It never blocks the program.
type lines struct {
	mu      sync.Mutex
	part    string
	got     []string
	read    int           // lines already returned by next
	changed chan struct{} // closed and replaced when a line arrives
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part += string(p)
	for {
		line, rest, ok := strings.Cut(l.part, "\n")
		if !ok {
			break
		}
		l.got = append(l.got, line)
		l.part = rest
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// next returns the next line, waiting for it at most wait.
func (l *lines) next(t testing.TB) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		if l.read < len(l.got) {
			line := l.got[l.read]
			l.read++
			l.mu.Unlock()
			return line
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no line from the server within %v", wait)
			return ""
		}
	}
}
