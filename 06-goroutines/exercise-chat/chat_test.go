//go:build exercise || solution

package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test, so a broken room fails the
// test instead of hanging it.
const wait = 5 * time.Second

func TestEachClientIsWelcomedWithItsOwnAddress(t *testing.T) {
	srv := startServer(t)
	// join checks the welcome line names the client's own address.
	a := join(t, srv.addr)
	// The welcome is all: a short read deadline shows nothing else
	// comes (a longer one would only slow the test).
	a.expectSilence(t)
	assert.Equal(t, "client "+a.name+" connected", srv.out.waitFor(t, "connected"))
}

func TestTwoClientsSeeEachOthersLinesButNotTheirOwn(t *testing.T) {
	srv := startServer(t)
	a := join(t, srv.addr)
	b := join(t, srv.addr)
	a.expect(t, "* "+b.name+" joined")

	a.say(t, "hello")
	b.expect(t, "["+a.name+"] hello")
	b.say(t, "hi, how are you?")
	// Had a's own line come back to it, it would arrive first: the room
	// handled "hello" before b even read it.
	a.expect(t, "["+b.name+"] hi, how are you?")
	a.expectSilence(t)
	b.expectSilence(t)
}

func TestThreeClientsEachLineReachesBothOthers(t *testing.T) {
	srv := startServer(t)
	a, b, c := join(t, srv.addr), join(t, srv.addr), join(t, srv.addr)
	a.expect(t, "* "+b.name+" joined")
	a.expect(t, "* "+c.name+" joined")
	b.expect(t, "* "+c.name+" joined")

	for _, speaker := range []*member{a, b, c} {
		line := "this is " + speaker.name
		speaker.say(t, line)
		for _, listener := range []*member{a, b, c} {
			if listener != speaker {
				listener.expect(t, "["+speaker.name+"] "+line)
			}
		}
	}
	// Nobody got a line twice, or their own.
	for _, m := range []*member{a, b, c} {
		m.expectSilence(t)
	}
}

func TestJoinAndLeaveAreAnnouncedToTheOthers(t *testing.T) {
	srv := startServer(t)
	a := join(t, srv.addr)
	b := join(t, srv.addr)
	a.expect(t, "* "+b.name+" joined")

	require.NoError(t, b.Close())
	// The server logs "gone" once the broadcaster has taken b's
	// departure. The broadcaster handles one event at a time, so the
	// newcomer below is announced after b's departure, never before.
	srv.out.waitFor(t, "client "+b.name+" gone")

	// The room goes on: a newcomer is announced, and hears a.
	c := join(t, srv.addr)
	a.expect(t, "* "+b.name+" left")
	a.expect(t, "* "+c.name+" joined")
	a.say(t, "welcome")
	c.expect(t, "["+a.name+"] welcome")
	a.expectSilence(t)
}

func TestTelnetLineEndingsAreStrippedAndEmptyLinesSkipped(t *testing.T) {
	srv := startServer(t)
	a := join(t, srv.addr)
	b := join(t, srv.addr)
	a.expect(t, "* "+b.name+" joined")

	// telnet ends each line with "\r\n"; an empty line says nothing.
	a.send(t, "from telnet\r\n\r\n\nfrom nc\n")
	b.expect(t, "["+a.name+"] from telnet")
	b.expect(t, "["+a.name+"] from nc")
	b.expectSilence(t)
}

func TestTooLongLineClosesItsSenderWithAReason(t *testing.T) {
	srv := startServer(t, "-max-line", "100")
	a := join(t, srv.addr)
	b := join(t, srv.addr)
	a.expect(t, "* "+b.name+" joined")

	// Exactly the limit is fine.
	limit := strings.Repeat("x", 100)
	b.say(t, limit)
	a.expect(t, "["+b.name+"] "+limit)

	// One byte more closes the sender, which is told why, and the room
	// hears it left. The server never held more than the limit.
	b.say(t, strings.Repeat("y", 5000))
	b.expect(t, "* line too long (max 100 bytes), closing")
	b.expectEOF(t)
	a.expect(t, "* "+b.name+" left")
	a.expectSilence(t)
}

func TestClientThatNeverReadsIsDroppedAndDoesNotStallTheRoom(t *testing.T) {
	// Long lines fill the silent client's kernel buffers (several MB on
	// loopback) in a few hundred lines; then its outbox of 256 KiB.
	srv := startServer(t, "-max-line", "65536", "-outbox", "262144")
	a := join(t, srv.addr)
	b := join(t, srv.addr)
	deaf := join(t, srv.addr) // never reads another byte
	a.expect(t, "* "+b.name+" joined")
	a.expect(t, "* "+deaf.name+" joined")
	b.expect(t, "* "+deaf.name+" joined")

	// a talks, b listens to every line. Each line reaches b within a
	// second, however full the deaf client's buffers are, until the
	// room drops the deaf client. 1000 lines of 65 KB are far more than
	// any kernel buffers: a room that never drops it fails here.
	line := strings.Repeat("z", 65000)
	dropped := false
	for i := 0; i < 1000 && !dropped; i++ {
		text := strconv.Itoa(i) + " " + line
		a.say(t, text)
		require.NoError(t, b.SetReadDeadline(time.Now().Add(time.Second)))
		got := b.next(t)
		if got == "* "+deaf.name+" left (too slow)" {
			dropped = true
			got = b.next(t)
		}
		require.Equal(t, "["+a.name+"] "+text, got, "b missed a line or it came late: the room stalled")
	}
	require.True(t, dropped, "the client that never reads was never dropped")
	a.expect(t, "* "+deaf.name+" left (too slow)")

	// The room goes on as before.
	b.say(t, "still here")
	a.expect(t, "["+b.name+"] still here")
}

func TestShutdownTellsEveryClientAndEndsCleanly(t *testing.T) {
	srv := startServer(t)
	a := join(t, srv.addr)
	b := join(t, srv.addr)
	a.expect(t, "* "+b.name+" joined")

	srv.stop() // what Ctrl+C does
	for _, m := range []*member{a, b} {
		rest, err := io.ReadAll(m.r)
		require.NoError(t, err, "%s: want a clean end of stream (FIN), not a reset", m.name)
		m.Close() // a polite client closes when it reads the end
		// The other may have been announced as leaving first.
		got := strings.Split(strings.TrimSuffix(string(rest), "\n"), "\n")
		assert.Equal(t, "* server shutting down", got[len(got)-1], "%s's last line", m.name)
		for _, line := range got[:len(got)-1] {
			assert.Regexp(t, `^\* \S+ left$`, line)
		}
	}
	require.NoError(t, srv.wait(t), "shutdown is not an error")
	assert.Contains(t, srv.out.String(), "stopped\n")
}

func TestNoGoroutineLeaksAfterShutdown(t *testing.T) {
	srv := startServer(t)
	// Members in every state: talking, mid-line, half-closed, silent.
	a := join(t, srv.addr)
	b := join(t, srv.addr)
	a.expect(t, "* "+b.name+" joined")
	a.say(t, "hello")
	b.expect(t, "["+a.name+"] hello")
	b.send(t, "no end to this line")
	half := join(t, srv.addr)
	require.NoError(t, half.Conn.(*net.TCPConn).CloseWrite())
	a.expect(t, "* "+half.name+" joined")
	a.expect(t, "* "+half.name+" left")
	join(t, srv.addr)

	srv.stop()
	require.NoError(t, srv.wait(t))
	// The clients are all still connected: only the server's own
	// goroutines could have ended them.
	assertNoGoroutinesLeft(t)
}

func TestBusyAddressFailsWithAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, explain(err), "(see docs/errors.md#eaddrinuse)")
}

// member is a test client: its connection, a buffered reader that the
// test alone reads through, and its name in the room.
type member struct {
	net.Conn
	r    *bufio.Reader
	name string
}

// join connects to the room and reads the welcome, which must name the
// client's own address. Once welcomed, the client is a member: every
// line said from then on reaches it.
func join(t testing.TB, addr string) *member {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	m := &member{Conn: conn, r: bufio.NewReader(conn), name: conn.LocalAddr().String()}
	m.expect(t, "* welcome, you are "+m.name)
	return m
}

// next reads one line, without its "\n".
func (m *member) next(t testing.TB) string {
	t.Helper()
	line, err := m.r.ReadString('\n')
	require.NoError(t, err, "%s: reading a line, got %q so far", m.name, line)
	return strings.TrimSuffix(line, "\n")
}

// expect reads one line, within wait, and compares it with want.
func (m *member) expect(t testing.TB, want string) {
	t.Helper()
	require.NoError(t, m.SetReadDeadline(time.Now().Add(wait)))
	require.Equal(t, want, m.next(t), "%s's next line", m.name)
}

// expectSilence checks that nothing more arrives. Nothing can prove a
// line will never come; 50 ms is ample on loopback for one that was
// already on its way, since every line before it arrived at once.
func (m *member) expectSilence(t testing.TB) {
	t.Helper()
	require.NoError(t, m.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	line, err := m.r.ReadString('\n')
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "%s: want nothing more, got %q (%v)", m.name, line, err)
}

// expectEOF checks the server ended the connection with a clean FIN.
func (m *member) expectEOF(t testing.TB) {
	t.Helper()
	require.NoError(t, m.SetReadDeadline(time.Now().Add(wait)))
	rest, err := io.ReadAll(m.r)
	require.NoError(t, err, "%s: want a clean end of stream (FIN), not a reset", m.name)
	assert.Empty(t, string(rest))
}

// send writes raw bytes; say writes one line.
func (m *member) send(t testing.TB, s string) {
	t.Helper()
	require.NoError(t, m.SetWriteDeadline(time.Now().Add(wait)))
	_, err := io.WriteString(m, s)
	require.NoError(t, err)
}

func (m *member) say(t testing.TB, line string) {
	t.Helper()
	m.send(t, line+"\n")
}

// testServer is the program running in this process.
type testServer struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program on a free port with the extra flags in
// args, and waits for it to print the address it listens on. The server
// is stopped, and waited for, when the test ends.
func startServer(t testing.TB, args ...string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &testServer{out: newLines(), stop: cancel, done: make(chan error, 1)}
	args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	go func() { srv.done <- run(ctx, args, srv.out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(2 * wait):
			t.Error("server did not stop after cancel")
		}
	})
	first := srv.out.waitFor(t, "")
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	srv.addr = addr
	return srv
}

// wait returns the program's result, failing the test if it runs on.
func (s *testServer) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // let Cleanup see it too
		return err
	case <-time.After(2 * wait):
		t.Fatal("server did not return")
		return nil
	}
}

// lines is an io.Writer that keeps each complete line, so a test can wait
// for a line instead of sleeping. It never blocks the program.
type lines struct {
	mu      sync.Mutex
	all     strings.Builder
	part    string
	got     []string
	read    int           // lines already returned by waitFor
	changed chan struct{} // closed and replaced when a line arrives
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
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

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// waitFor returns the next line that contains s, skipping those before it.
func (l *lines) waitFor(t testing.TB, s string) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		for l.read < len(l.got) {
			line := l.got[l.read]
			l.read++
			if strings.Contains(line, s) {
				l.mu.Unlock()
				return line
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no line containing %q within %v; so far:\n%s", s, wait, l.String())
			return ""
		}
	}
}

// assertNoGoroutinesLeft waits until no goroutine is running code from
// this package's non-test files, and fails listing them if some still are
// after half a second: time enough for goroutines on their way out, too
// short for one still talking to a client.
func assertNoGoroutinesLeft(t testing.TB) {
	t.Helper()
	// This package's files as the compiler recorded them, which is how
	// stack traces name them, whatever the working directory is (a test
	// binary built on one system may run on another, under Wine say).
	_, self, _, ok := runtime.Caller(0)
	require.True(t, ok, "no caller information")
	prefix := path.Dir(self) + "/"
	var left []string
	deadline := time.Now().Add(500 * time.Millisecond)
	for {
		left = left[:0]
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		// The first goroutine is this one, running the test.
		for _, g := range strings.Split(string(buf), "\n\n")[1:] {
			for _, line := range strings.Split(g, "\n") {
				// A frame's file line reads "\t/path/main.go:42 +0x1d".
				file, _, _ := strings.Cut(strings.TrimSpace(line), " ")
				if i := strings.LastIndex(file, ":"); i > 0 {
					file = file[:i]
				}
				if strings.HasPrefix(file, prefix) && !strings.HasSuffix(file, "_test.go") {
					left = append(left, g)
					break
				}
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	assert.Empty(t, left, "goroutines still running the server's code")
}
