//go:build exercise || solution

package main

import (
	"bytes"
	"context"
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

// wait bounds every blocking step of a test, so a broken server fails
// the test instead of hanging it.
const wait = 5 * time.Second

func TestReplyIsTheSendersAddressAndPort(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	conn := dialUDP(t, srv.addr)

	// The client's LocalAddr is what the server's ReadFrom reports.
	assert.Equal(t, conn.LocalAddr().String()+"\n", exchange(t, conn, nil))
	assert.Equal(t, "told "+conn.LocalAddr().String()+" its address", srv.out.next(t))
}

func TestEachSocketIsToldItsOwnPort(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	a, b := dialUDP(t, srv.addr), dialUDP(t, srv.addr)
	require.NotEqual(t, a.LocalAddr().String(), b.LocalAddr().String())

	// Same machine, same IP address; only the port tells them apart,
	// and each is answered at its own.
	assert.Equal(t, b.LocalAddr().String()+"\n", exchange(t, b, []byte("b")))
	assert.Equal(t, a.LocalAddr().String()+"\n", exchange(t, a, []byte("a")))
}

func TestEveryDatagramWithoutAColonIsAnswered(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	conn := dialUDP(t, srv.addr)
	for _, request := range [][]byte{nil, []byte("who am I?\n"), bytes.Repeat([]byte{0xff}, 1000)} {
		assert.Equal(t, conn.LocalAddr().String()+"\n", exchange(t, conn, request))
	}
}

func TestAnswerIsNeverTakenForAQuestion(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	conn := dialUDP(t, srv.addr)
	// Every answer holds a colon, so a datagram with one is never
	// answered: two servers could otherwise answer each other forever.
	_, err := conn.Write([]byte(conn.LocalAddr().String() + "\n"))
	require.NoError(t, err)
	noReply(t, conn)
	assert.Equal(t, "ignored "+conn.LocalAddr().String()+": it holds a colon, as every answer does", srv.out.next(t))
}

func TestServerNeverAnswersADatagramFromItsOwnAddress(t *testing.T) {
	canForge(t)
	srv := startServer(t, "127.0.0.1:0")
	// One datagram forged with the server's own address as its source:
	// answering it would send the answer to itself, and so on.
	sendFromServersSocket(t, srv.addr, nil, srv.addr)
	// A real client queues behind it: once answered, the forged one has
	// been read.
	conn := dialUDP(t, srv.addr)
	exchange(t, conn, nil)
	srv.during(t, loopWindow)
	assert.Equal(t, 1, srv.told(t), "only the real client is answered")
	assert.Contains(t, srv.out.String(), ": it comes from this server's own address\n")
}

func TestTwoServersForgedAtEachOtherAnswerOnceNotForever(t *testing.T) {
	canForge(t)
	a, b := startServer(t, "127.0.0.1:0"), startServer(t, "127.0.0.1:0")
	// A question forged from a to b: b answers a, and a must not
	// answer b's answer.
	sendFromServersSocket(t, a.addr, nil, b.addr)
	exchange(t, dialUDP(t, b.addr), nil)
	exchange(t, dialUDP(t, a.addr), nil)
	a.during(t, loopWindow)
	assert.Equal(t, 2, b.told(t), "b answers the forged question and its real client")
	assert.Equal(t, 1, a.told(t), "a answers only its real client")
}

func TestDatagramFromAPrivilegedPortIsNotAnswered(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	// Services such as echo live below 1024 and answer whatever
	// arrives; this socket plays one.
	service := privilegedSocket(t)
	to, err := net.ResolveUDPAddr("udp", srv.addr)
	require.NoError(t, err)
	_, err = service.WriteTo(nil, to)
	require.NoError(t, err)
	require.NoError(t, service.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, _, err = service.ReadFrom(make([]byte, maxDatagram))
	assert.True(t, isTimeout(err), "want no answer, got %v", err)
	assert.Contains(t, srv.out.next(t), "below 1024")
}

func TestIPv6SenderSeesItsAddressInBrackets(t *testing.T) {
	if !nettest.SupportsIPv6() {
		t.Skip("this system has no IPv6 loopback")
	}
	srv := startServer(t, "[::1]:0")
	conn := dialUDP(t, srv.addr)
	// "[::1]:52814": the brackets keep the port apart from the colons
	// of the IPv6 address.
	reply := exchange(t, conn, nil)
	assert.Regexp(t, `^\[::1\]:\d+\n$`, reply)
	assert.Equal(t, conn.LocalAddr().String()+"\n", reply)
}

func TestStopExitsCleanly(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	srv.stop() // what Ctrl+C does
	select {
	case err := <-srv.done:
		assert.NoError(t, err)
		srv.done <- err
	case <-time.After(wait):
		t.Fatal("the server did not stop")
	}
}

func TestWorksWithNetcat(t *testing.T) {
	nc, err := exec.LookPath("nc")
	if err != nil {
		t.Skip("nc is not installed (on Debian: apt-get install netcat-openbsd)")
	}
	srv := startServer(t, "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(srv.addr)

	// -u is UDP. nc cannot know when the answer is complete, so -w 1
	// makes it quit after a second with nothing to read.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, nc, "-u", "-w", "1", host, port)
	cmd.Stdin = strings.NewReader("hi\n")
	got, err := cmd.Output()
	require.NoError(t, err)
	assert.Regexp(t, `^127\.0\.0\.1:\d+\n$`, string(got))
}

func TestReadmeTranscript(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, run(ctx, []string{"-client", "-addr", srv.addr}, nil, &out, io.Discard))
	assertTranscript(t, "client", out.String())

	srv.out.next(t) // "told ... its address": the server is done with it
	srv.stop()
	select {
	case err := <-srv.done:
		require.NoError(t, err)
		srv.done <- err
	case <-time.After(wait):
		t.Fatal("the server did not stop")
	}
	assertTranscript(t, "server", srv.out.String())
}

// ---- helpers ----

type server struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program on addr and waits for the address it
// really listens on.
func startServer(t *testing.T, addr string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLines(), stop: cancel, done: make(chan error, 1)}
	go func() { srv.done <- run(ctx, []string{"-addr", addr}, nil, srv.out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(wait):
			t.Error("server did not stop after cancel")
		}
	})
	first := srv.out.next(t)
	got, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	srv.addr = got
	return srv
}

func dialUDP(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// exchange sends one datagram and returns the one reply. On loopback
// nothing is lost, so one try is enough, and a second is far longer
// than an answer from a server in this process takes.
func exchange(t *testing.T, conn net.Conn, request []byte) string {
	t.Helper()
	_, err := conn.Write(request)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Second)))
	buf := make([]byte, maxDatagram)
	n, err := conn.Read(buf)
	require.NoError(t, err, "expected a reply")
	return string(buf[:n])
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

// told stops the server and counts the answers it logged.
func (s *server) told(t *testing.T) int {
	t.Helper()
	s.stop()
	select {
	case err := <-s.done:
		require.NoError(t, err)
		s.done <- err
	case <-time.After(wait):
		t.Fatal("the server did not stop")
	}
	return strings.Count(s.out.String(), "\ntold ")
}

// loopWindow is how long the loop tests let a loop run before counting:
// a looping server answers thousands of times in it.
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

// noReply checks that nothing arrives on conn for 50ms; an answer from
// a server in this process would come back far sooner.
func noReply(t *testing.T, conn net.Conn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	n, err := conn.Read(make([]byte, maxDatagram))
	assert.True(t, isTimeout(err), "want no answer, got %d bytes (err %v)", n, err)
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
