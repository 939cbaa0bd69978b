//go:build exercise || solution

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test, so a broken client fails
// the test instead of hanging it.
const wait = 5 * time.Second

func TestRequestCarriesItsNumberAndTheReplyTextComesBack(t *testing.T) {
	p := startPeer(t, echo)
	c := newClient(t, p, 200*time.Millisecond, 3)

	answer, err := ask(t, c, "hello")
	require.NoError(t, err)
	assert.Equal(t, "hello", answer, "the number is not part of the answer")
	assert.Equal(t, "1 hello", p.next(t).data, "the first request is number 1")
}

func TestEachRequestGetsTheNextNumber(t *testing.T) {
	p := startPeer(t, echo)
	c := newClient(t, p, 200*time.Millisecond, 3)

	for _, msg := range []string{"a", "b", "c"} {
		answer, err := ask(t, c, msg)
		require.NoError(t, err)
		assert.Equal(t, msg, answer)
	}
	assert.Equal(t, "1 a", p.next(t).data)
	assert.Equal(t, "2 b", p.next(t).data)
	assert.Equal(t, "3 c", p.next(t).data)
}

func TestLostRequestIsSentAgainWithTheSameNumber(t *testing.T) {
	p := startPeer(t, dropFirst(2, echo))
	c := newClient(t, p, 20*time.Millisecond, 3)

	answer, err := ask(t, c, "hello")
	require.NoError(t, err, "two losses and three retries: the third attempt gets through")
	assert.Equal(t, "hello", answer)
	// A retry is the same request, not a new one.
	for i := 0; i < 3; i++ {
		assert.Equal(t, "1 hello", p.next(t).data, "datagram %d", i+1)
	}
}

func TestWaitBetweenAttemptsDoublesEachTime(t *testing.T) {
	p := startPeer(t, dropFirst(3, echo))
	var log bytes.Buffer
	c := newClient(t, p, 60*time.Millisecond, 3)
	c.log = &log

	answer, err := ask(t, c, "hello")
	require.NoError(t, err)
	assert.Equal(t, "hello", answer)

	// The client says what it waited...
	assert.Equal(t, []string{
		"no reply within 60ms; sending again (attempt 2 of 4)",
		"no reply within 120ms; sending again (attempt 3 of 4)",
		"no reply within 240ms; sending again (attempt 4 of 4)",
	}, linesStarting(log.String(), "no reply"))

	// ...and the peer's clock confirms it. Nominal gaps between the
	// datagrams' arrivals are 60, 120 and 240ms. A busy machine can only
	// make a gap look longer, except by delaying the peer's own read of
	// one datagram, so each gap must reach half its nominal length (a
	// client that always waited 60ms fails at the third), and the last
	// gap must be longer than the first. No upper bound: load would
	// make it flaky.
	var at []time.Time
	for i := 0; i < 4; i++ {
		at = append(at, p.next(t).at)
	}
	nominal := []time.Duration{60 * time.Millisecond, 120 * time.Millisecond, 240 * time.Millisecond}
	var gaps []time.Duration
	for i, want := range nominal {
		gap := at[i+1].Sub(at[i])
		gaps = append(gaps, gap)
		assert.GreaterOrEqual(t, gap, want/2, "gap %d: the wait after attempt %d should be about %v", i+1, i+1, want)
	}
	assert.Greater(t, gaps[2], gaps[0], "waits must grow: %v", gaps)
}

func TestDuplicateReplyIsNotTakenForTheNextAnswer(t *testing.T) {
	// This network delivers every reply twice. The second copy of the
	// answer to request 1 is waiting in the socket when request 2 is sent.
	p := startPeer(t, twice(echo))
	var log bytes.Buffer
	c := newClient(t, p, 200*time.Millisecond, 3)
	c.log = &log

	for _, msg := range []string{"one", "two", "three"} {
		answer, err := ask(t, c, msg)
		require.NoError(t, err)
		assert.Equal(t, msg, answer)
	}
	assert.Equal(t, []string{
		`ignored a reply that is not to request 2: "re 1 one"`,
		`ignored a reply that is not to request 3: "re 2 two"`,
	}, linesStarting(log.String(), "ignored"))
}

func TestRepliesWithAnotherNumberOrNoNumberAreIgnored(t *testing.T) {
	p := startPeer(t, func(d []byte, reply func(string)) {
		reply("re 7 a late answer to somebody else")
		reply("garbage")
		reply("")
		reply("re -1 negative")
		reply(string(d)) // a plain echo: the request, not a reply
		reply(replyPrefix + string(d))
	})
	c := newClient(t, p, 200*time.Millisecond, 3)

	answer, err := ask(t, c, "hello")
	require.NoError(t, err)
	assert.Equal(t, "hello", answer)
}

func TestStreamOfStaleRepliesCannotKeepTheClientWaiting(t *testing.T) {
	// This peer never answers the request, but sends a reply to an old
	// request every few milliseconds. A client that restarted its wait
	// for every datagram it ignored would never give up.
	stop := make(chan struct{})
	var flooding sync.WaitGroup
	t.Cleanup(func() { close(stop); flooding.Wait() })
	var once sync.Once
	p := startPeer(t, func(_ []byte, reply func(string)) {
		once.Do(func() {
			flooding.Add(1)
			go func() {
				defer flooding.Done()
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						reply("re 0 stale")
					}
				}
			}()
		})
	})
	c := newClient(t, p, 30*time.Millisecond, 2)

	_, err := ask(t, c, "hello")
	require.Error(t, err)
	assert.True(t, isTimeout(err), "want a timeout, got %v", err)
}

func TestGivesUpWithATimeoutAfterTheLastRetry(t *testing.T) {
	p := startPeer(t, func([]byte, func(string)) {}) // hears all, answers nothing
	c := newClient(t, p, 20*time.Millisecond, 2)

	_, err := ask(t, c, "hello")
	require.Error(t, err)
	assert.True(t, isTimeout(err), "the error must wrap the timeout, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#timeout)")
	// One send and two retries reached the peer. They were all sent
	// before ask returned, so a second is plenty for the peer to read
	// each one.
	for i := 1; i <= 3; i++ {
		select {
		case <-p.arrivals:
		case <-time.After(time.Second):
			t.Fatalf("only %d datagrams reached the peer, want 3", i-1)
		}
	}
	// Nothing more is sent after the last attempt. A short read of the
	// arrivals is enough to see an extra datagram that was already on
	// its way when ask returned.
	select {
	case extra := <-p.arrivals:
		t.Errorf("a fourth datagram arrived after the client gave up: %q", extra.data)
	case <-time.After(50 * time.Millisecond):
	}
}

// ---- the server: it never answers a reply ----

func TestServerNeverEchoesADatagramFromItsOwnAddress(t *testing.T) {
	canForge(t)
	srv := startServer(t, "-addr", "127.0.0.1:0", "-dup")
	// One request forged with the server's own address as its source.
	// Echoing it would send two copies to itself, each echoed twice...
	sendFromServersSocket(t, srv.addr, []byte("1 hello"), srv.addr)
	// A real client queues behind it: once answered, the forged one has
	// been read.
	assert.Equal(t, "re 2 probe", srv.exchange(t, "2 probe"))
	srv.during(t, loopWindow)
	log := srv.stopAndLog(t)
	assert.Equal(t, 1, strings.Count(log, "\nechoed "), "only the real client is answered:\n%s", log)
	assert.Contains(t, log, `ignored "1 hello" from `+srv.addr+": it comes from this server's own address\n")
}

func TestTwoServersForgedAtEachOtherEchoOnceNotForever(t *testing.T) {
	canForge(t)
	a := startServer(t, "-addr", "127.0.0.1:0", "-dup")
	b := startServer(t, "-addr", "127.0.0.1:0", "-dup")
	// A request forged from a to b: b echoes it to a twice, and a must
	// not echo the echoes, or with -dup the traffic doubles each round.
	sendFromServersSocket(t, a.addr, []byte("1 hello"), b.addr)
	b.exchange(t, "2 probe")
	a.exchange(t, "2 probe")
	a.during(t, loopWindow)
	logA, logB := a.stopAndLog(t), b.stopAndLog(t)
	assert.Equal(t, 2, strings.Count(logB, "\nechoed "), "b echoes the forged request and its client:\n%s", logB)
	assert.Equal(t, 1, strings.Count(logA, "\nechoed "), "a echoes only its client:\n%s", logA)
	assert.Equal(t, 2, strings.Count(logA, `ignored "re 1 hello" from `+b.addr+": not a request\n"))
}

func TestDatagramFromAPrivilegedPortIsNotEchoed(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	// Services such as echo live below 1024 and answer whatever
	// arrives; this socket plays one.
	service := privilegedSocket(t)
	to, err := net.ResolveUDPAddr("udp", srv.addr)
	require.NoError(t, err)
	_, err = service.WriteTo([]byte("1 hello"), to)
	require.NoError(t, err)
	require.NoError(t, service.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, _, err = service.ReadFrom(make([]byte, maxDatagram))
	assert.True(t, isTimeout(err), "want no echo, got %v", err)
	assert.Contains(t, srv.out.next(t), ", below 1024")
}

func TestServerLogsAtMost32BytesOfADatagram(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	long := "1 " + strings.Repeat("\xff", 9000)
	reply := srv.exchange(t, long)
	assert.True(t, reply == "re "+long, "the echo is whole: got %d bytes", len(reply))
	// 30 bytes of \xff after "1 ", quoted: 120 characters, not 36,000.
	want := `echoed "1 ` + strings.Repeat(`\xff`, 30) + `"… (9002 bytes) to ` + srv.dialed
	line := srv.out.next(t)
	assert.True(t, line == want, "want %s\n got %.300s", want, line)
}

// The README shows a session with the program's own lossy server; this
// test plays it and compares, ports aside.
func TestReadmeTranscript(t *testing.T) {
	srvOut := newLines()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-drop", "1", "-dup"}, nil, srvOut, io.Discard)
	}()
	addr, ok := strings.CutPrefix(srvOut.next(t), "listening on ")
	require.True(t, ok)

	// stdout and stderr share one buffer, as in a terminal; the client
	// writes them from one goroutine, so their order is fixed.
	var client bytes.Buffer
	cctx, ccancel := context.WithTimeout(context.Background(), wait)
	defer ccancel()
	err := run(cctx, []string{"-client", "-addr", addr, "-timeout", "100ms"}, strings.NewReader("hello\nworld\n"), &client, &client)
	require.NoError(t, err)
	assertTranscript(t, "client", client.String())

	// The client is done when the first copy of its last answer
	// arrives; wait until the server has sent the second copy too.
	for i := 0; i < 3; i++ {
		srvOut.next(t)
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("server did not stop")
	}
	assertTranscript(t, "server", srvOut.String())
}

// ---- the fake peer ----

// arrival is one datagram the peer received, and when.
type arrival struct {
	at   time.Time
	data string
}

// peer is a UDP socket on loopback that records every datagram it gets
// and answers as its behaviour says: a lossy, duplicating network and
// server in one.
type peer struct {
	conn     net.PacketConn
	arrivals chan arrival
}

// behaviour decides what to send back for one datagram: it may call
// reply any number of times, including none.
type behaviour func(datagram []byte, reply func(string))

// echo answers as the program's server does: "re ", then the request.
func echo(d []byte, reply func(string)) { reply(replyPrefix + string(d)) }

// dropFirst ignores the first n datagrams, then behaves like b.
func dropFirst(n int, b behaviour) behaviour {
	return func(d []byte, reply func(string)) {
		if n > 0 {
			n-- // only the peer's goroutine calls this
			return
		}
		b(d, reply)
	}
}

// twice sends every reply of b two times.
func twice(b behaviour) behaviour {
	return func(d []byte, reply func(string)) {
		b(d, func(s string) { reply(s); reply(s) })
	}
}

func startPeer(t *testing.T, b behaviour) *peer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &peer{conn: conn, arrivals: make(chan arrival, 100)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed by the cleanup below
			}
			p.arrivals <- arrival{at: time.Now(), data: string(buf[:n])}
			b(buf[:n], func(s string) { conn.WriteTo([]byte(s), from) })
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return p
}

// next returns the next datagram the peer received.
func (p *peer) next(t *testing.T) arrival {
	t.Helper()
	select {
	case a := <-p.arrivals:
		return a
	case <-time.After(wait):
		t.Fatal("no datagram reached the peer")
		return arrival{}
	}
}

// newClient dials the peer; its log goes to the test's log.
func newClient(t *testing.T, p *peer, timeout time.Duration, retries int) *client {
	t.Helper()
	conn, err := net.Dial("udp", p.conn.LocalAddr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &client{conn: conn, timeout: timeout, retries: retries, log: testLog{t}}
}

// ask runs c.ask, failing the test if it does not return in time.
func ask(t *testing.T, c *client, msg string) (string, error) {
	t.Helper()
	type result struct {
		answer string
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		answer, err := c.ask(msg)
		ch <- result{answer, err}
	}()
	select {
	case r := <-ch:
		return r.answer, r.err
	case <-time.After(wait):
		c.conn.Close() // wakes the read, so the goroutine ends
		t.Fatalf("ask(%q) did not return within %v", msg, wait)
		return "", nil
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func linesStarting(s, prefix string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return out
}

// ---- the program's server ----

type server struct {
	addr   string
	out    *lines
	stop   context.CancelFunc
	done   chan error
	conn   net.Conn // a client of this server, for exchange
	dialed string   // its address, as the server sees it
}

// startServer runs the program's server with args and waits for the
// address it listens on.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLines(), stop: cancel, done: make(chan error, 1)}
	go func() { srv.done <- run(ctx, args, nil, srv.out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(wait):
			t.Error("server did not stop after cancel")
		}
	})
	addr, ok := strings.CutPrefix(srv.out.next(t), "listening on ")
	require.True(t, ok)
	srv.addr = addr
	conn, err := net.Dial("udp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	srv.conn, srv.dialed = conn, conn.LocalAddr().String()
	return srv
}

// exchange sends one datagram and returns the first reply.
func (s *server) exchange(t *testing.T, request string) string {
	t.Helper()
	_, err := s.conn.Write([]byte(request))
	require.NoError(t, err)
	require.NoError(t, s.conn.SetReadDeadline(time.Now().Add(wait)))
	buf := make([]byte, maxDatagram)
	n, err := s.conn.Read(buf)
	require.NoError(t, err)
	return string(buf[:n])
}

// stopAndLog stops the server and returns all it printed.
func (s *server) stopAndLog(t *testing.T) string {
	t.Helper()
	s.stop()
	select {
	case err := <-s.done:
		require.NoError(t, err)
		s.done <- err
	case <-time.After(wait):
		t.Fatal("the server did not stop")
	}
	return s.out.String()
}

// loopWindow is how long the loop tests let a loop run before counting:
// a looping server echoes thousands of times in it.
const loopWindow = 100 * time.Millisecond

// during lets d pass, failing the test if the server stops meanwhile.
func (s *server) during(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		t.Fatalf("the server stopped: %v", err)
	case <-time.After(d):
	}
}

// privilegedSocket binds a UDP socket on loopback to a port below 1024,
// or skips the test where this user may not.
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

// next returns the next line not returned yet, waiting up to wait.
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
