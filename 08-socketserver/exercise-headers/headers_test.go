//go:build exercise || solution

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step of a test, so a broken server fails
// the test instead of hanging it.
const wait = 5 * time.Second

// raw builds a message byte by byte from the README's table, not with
// writeMessage, so the tests pin the layout itself.
func raw(kind byte, payload string) []byte {
	return append([]byte{kind, byte(len(payload) >> 8), byte(len(payload))}, payload...)
}

// ---- readMessage on its own ----

func TestMessageLayoutIsExactlyAsTheReadmeSays(t *testing.T) {
	wire := []byte("T\x00\x05hello")
	m, err := readMessage(bytes.NewReader(wire))
	require.NoError(t, err)
	assert.Equal(t, message{kind: 'T', payload: []byte("hello")}, m)

	var sent bytes.Buffer
	require.NoError(t, writeMessage(&sent, m))
	assert.Equal(t, wire, sent.Bytes(), "writeMessage in main.go writes the same bytes")
}

func TestReadMessageSeparatesMessagesMergedInOneBuffer(t *testing.T) {
	wire := bytes.Join([][]byte{raw('T', "one"), raw('P', ""), raw('T', strings.Repeat("x", 300))}, nil)
	r := bytes.NewReader(wire)
	for _, want := range []message{
		{kind: 'T', payload: []byte("one")},
		{kind: 'P', payload: []byte{}},
		{kind: 'T', payload: []byte(strings.Repeat("x", 300))},
	} {
		m, err := readMessage(r)
		require.NoError(t, err)
		assert.Equal(t, show(want), show(m))
	}
	_, err := readMessage(r)
	assert.ErrorIs(t, err, io.EOF, "the stream ended between messages")
}

func TestReadMessageWorksWhenBytesArriveOneAtATime(t *testing.T) {
	r := iotest.OneByteReader(bytes.NewReader(append(raw('T', "split"), raw('P', "up")...)))
	m, err := readMessage(r)
	require.NoError(t, err)
	assert.Equal(t, "T split", show(m))
	m, err = readMessage(r)
	require.NoError(t, err)
	assert.Equal(t, "P up", show(m))
}

func TestReadMessageRefusesAnOversizedLengthBeforeReadingIt(t *testing.T) {
	// Only the header arrives: a reader that trusted the length would
	// wait for 5000 bytes and get io.ErrUnexpectedEOF instead.
	_, err := readMessage(bytes.NewReader([]byte{'T', 0x13, 0x88}))
	assert.ErrorIs(t, err, errTooLarge)
	assert.EqualError(t, err, "message of 5000 bytes is over the limit of 4096")

	m, err := readMessage(bytes.NewReader(raw('T', strings.Repeat("x", maxPayload))))
	require.NoError(t, err, "exactly the limit is allowed")
	assert.Len(t, m.payload, maxPayload)
}

func TestReadMessageReportsAStreamCutInsideAMessage(t *testing.T) {
	wire := raw('T', "hello")
	for n := 1; n < len(wire); n++ {
		_, err := readMessage(bytes.NewReader(wire[:n]))
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the stream ended after %d of %d bytes", n, len(wire))
	}
}

// ---- the server, through loopback ----

func TestTextIsAnsweredInUpperCase(t *testing.T) {
	c := dialServer(t)
	c.send(t, raw('T', "hello"))
	assert.Equal(t, "T HELLO", c.next(t))
}

func TestPingIsAnsweredWithAPongCarryingTheSamePayload(t *testing.T) {
	c := dialServer(t)
	c.send(t, raw('P', "42"))
	assert.Equal(t, "O 42", c.next(t))
}

func TestTheTypeDecidesNotTheContent(t *testing.T) {
	c := dialServer(t)
	c.send(t, raw('T', "ping"))
	assert.Equal(t, "T PING", c.next(t), "a text that says ping is still a text")
	c.send(t, raw('P', "hello"))
	assert.Equal(t, "O hello", c.next(t), "a ping that says hello is still a ping")
}

func TestEmptyMessagesAreAnsweredToo(t *testing.T) {
	c := dialServer(t)
	c.send(t, append(raw('T', ""), raw('P', "")...))
	c.closeWrite(t)
	assert.Equal(t, "T ", c.next(t))
	assert.Equal(t, "O ", c.next(t))
}

func TestManyMessagesInOneWriteGetOneReplyEach(t *testing.T) {
	c := dialServer(t)
	// 300 messages, a text and a ping taking turns, leave in one Write:
	// the server's reads see them merged, cut anywhere.
	var wire []byte
	var want []string
	for i := 0; i < 300; i++ {
		if i%2 == 0 {
			wire = append(wire, raw('T', fmt.Sprintf("text %d", i))...)
			want = append(want, fmt.Sprintf("T TEXT %d", i))
		} else {
			wire = append(wire, raw('P', fmt.Sprint(i))...)
			want = append(want, fmt.Sprintf("O %d", i))
		}
	}
	c.send(t, wire)
	c.closeWrite(t)
	var got []string
	for range want {
		got = append(got, c.next(t))
	}
	assert.Equal(t, want, got)
}

func TestOneMessageAcrossManyWritesGetsOneReply(t *testing.T) {
	c := dialServer(t)
	// Go turns Nagle's algorithm off, so each one-byte Write leaves as
	// its own segment: the server's reads see the message in pieces.
	for _, b := range raw('T', "byte by byte") {
		c.send(t, []byte{b})
	}
	assert.Equal(t, "T BYTE BY BYTE", c.next(t))
	// Exactly one reply: the next thing to arrive answers the next message.
	c.send(t, raw('P', "after"))
	assert.Equal(t, "O after", c.next(t))
}

func TestUnknownTypeGetsAnErrorAndTheConnectionCarriesOn(t *testing.T) {
	c := dialServer(t)
	c.send(t, append(raw('X', "from the future"), raw('T', "still here")...))
	c.closeWrite(t)
	assert.Equal(t, "E unknown message type 'X'", c.next(t))
	assert.Equal(t, "T STILL HERE", c.next(t), "the length said where the unknown message ended")
}

func TestOversizedMessageGetsAnErrorThenTheConnectionCloses(t *testing.T) {
	c := dialServer(t)
	c.send(t, []byte{'T', 0xff, 0xff}) // 65535 bytes announced, none sent
	c.closeWrite(t)
	assert.Equal(t, "E message of 65535 bytes is over the limit of 4096", c.next(t))
	c.assertClosed(t)
}

func TestStreamCutInsideAMessageClosesWithoutAReply(t *testing.T) {
	c := dialServer(t)
	c.send(t, raw('T', "hello")[:5])
	c.closeWrite(t)
	c.assertClosed(t)
}

func TestClientSendsTextsAndPingsAndPrintsEachReply(t *testing.T) {
	srv := startProgram(t)
	var out bytes.Buffer
	err := runWithin(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hi\n/ping\n/ping x y\n"), &out)
	require.NoError(t, err)
	assert.Equal(t, "text: HI\npong: \npong: x y\n", out.String())
}

func TestReadmeTranscripts(t *testing.T) {
	srv := startProgram(t)
	var out bytes.Buffer
	err := runWithin(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hello\n/ping 42\nping\n"), &out)
	require.NoError(t, err)
	assertTranscript(t, "client", out.String())

	assert.Contains(t, srv.out.next(t), "connected")
	assert.Contains(t, srv.out.next(t), "left")
	srv.stop()
	require.NoError(t, receive(t, srv.done))
	srv.done <- nil // for the cleanup, which waits for it too
	assertTranscript(t, "server", srv.out.String())
}

func TestReadmeWireTranscript(t *testing.T) {
	for _, tool := range []string{"sh", "nc", "od"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH: this test runs a shell pipeline through nc (on Debian: apt-get install netcat-openbsd; Windows has neither); .ci/run installs it", tool)
		}
	}
	srv := startProgram(t)
	host, port, _ := net.SplitHostPort(srv.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// The same pipeline as the README: nc -N half-closes after its
	// input, so the server sees the end and closes, and nc exits.
	pipeline := `printf 'T\000\005helloP\000\003abcX\000\000' | nc -N ` + host + " " + port + " | od -An -c"
	got, err := exec.CommandContext(ctx, "sh", "-c", pipeline).Output()
	if err != nil {
		t.Skipf("%s failed (%v): this nc may lack -N (macOS's does)", pipeline, err)
	}
	assertTranscript(t, "wire", string(got))
}

func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"stray"}, {"-idle-timeout", "0s"}, {"-nope"}} {
		err := run(context.Background(), args, nil, io.Discard, io.Discard)
		assert.ErrorIs(t, err, errUsage, "%q", args)
	}
}

// ---- helpers ----

// testClient talks to handle over loopback and reads replies with its
// own parser, so a broken readMessage cannot hide a broken server.
type testClient struct {
	conn    net.Conn
	replies *bufio.Reader
}

// dialServer serves handle on a fresh loopback listener and connects.
func dialServer(t *testing.T) *testClient {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve(ctx, ln, handle, wait, io.Discard) // nil after the cancel below
	}()
	t.Cleanup(func() { cancel(); receive(t, done) })

	conn, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return &testClient{conn: conn, replies: bufio.NewReader(conn)}
}

func (c *testClient) send(t *testing.T, b []byte) {
	t.Helper()
	_, err := c.conn.Write(b)
	require.NoError(t, err)
}

// closeWrite tells the server that nothing more is coming, so a server
// that misread the messages closes at once instead of waiting for more.
func (c *testClient) closeWrite(t *testing.T) {
	t.Helper()
	require.NoError(t, c.conn.(*net.TCPConn).CloseWrite())
}

// next returns the next reply, as show writes it.
func (c *testClient) next(t *testing.T) string {
	t.Helper()
	var header [3]byte
	_, err := io.ReadFull(c.replies, header[:])
	require.NoError(t, err, "no reply header")
	payload := make([]byte, int(header[1])<<8|int(header[2]))
	_, err = io.ReadFull(c.replies, payload)
	require.NoError(t, err, "reply cut short")
	return show(message{kind: header[0], payload: payload})
}

// show writes a message as "TYPE payload", with bytes that are not
// printable escaped, so a failing test prints no raw control bytes.
func show(m message) string {
	quoted := strconv.Quote(string(m.payload))
	return strings.Trim(strconv.QuoteRune(rune(m.kind)), "'") + " " + quoted[1:len(quoted)-1]
}

// assertClosed checks that the server closed the connection without
// sending anything more.
func (c *testClient) assertClosed(t *testing.T) {
	t.Helper()
	rest, err := io.ReadAll(c.replies)
	require.NoError(t, err, "the server should close with FIN")
	assert.Empty(t, rest, "nothing more should arrive before the close")
}

func runWithin(t *testing.T, args []string, stdin io.Reader, stdout io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return run(ctx, args, stdin, stdout, io.Discard)
}

// program is run() serving in this test process, its output captured
// line by line.
type program struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

func startProgram(t *testing.T) *program {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &program{out: newLines(), stop: cancel, done: make(chan error, 1)}
	go func() { p.done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, nil, p.out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		receive(t, p.done)
	})
	first := p.out.next(t)
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	p.addr = addr
	return p
}

// receive waits for one value from ch, failing the test if none comes.
func receive[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("nothing received within %v", wait)
		var zero T
		return zero
	}
}

// lines is an io.Writer that keeps every complete line the program
// prints, so a test can wait for a line instead of sleeping. It never
// blocks the program and never drops a line: each line goes to a slice
// under a mutex, and a notify channel of capacity 1 wakes whoever
// waits, who then looks again.
type lines struct {
	mu     sync.Mutex
	all    strings.Builder
	part   string
	got    []string
	read   int // lines already returned by take and next
	notify chan struct{}
}

func newLines() *lines { return &lines{notify: make(chan struct{}, 1)} }

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
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// take returns the next line not returned yet, if there is one.
func (l *lines) take() (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.read == len(l.got) {
		return "", false
	}
	l.read++
	return l.got[l.read-1], true
}

// next returns the next line not returned yet, waiting at most wait.
func (l *lines) next(t *testing.T) string {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		if line, ok := l.take(); ok {
			return line
		}
		select {
		case <-l.notify:
		case <-deadline.C:
			t.Fatalf("no line printed within %v; so far:\n%s", wait, l.String())
			return ""
		}
	}
}

// waitFor returns the first line printed, so far or within wait, that
// contains s.
func (l *lines) waitFor(t *testing.T, s string) string {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for _, line := range l.got {
			if strings.Contains(line, s) {
				l.mu.Unlock()
				return line
			}
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-deadline.C:
			t.Fatalf("no line containing %q within %v; so far:\n%s", s, wait, l.String())
			return ""
		}
	}
}

var ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]):\d+`)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring "$ " and "^C" lines and ports.
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
		if !strings.HasPrefix(line, "$ ") && line != "^C" {
			want = append(want, ports.ReplaceAllString(line, "$1:PORT"))
		}
	}
	have := strings.Split(ports.ReplaceAllString(strings.TrimSuffix(got, "\n"), "$1:PORT"), "\n")
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}
