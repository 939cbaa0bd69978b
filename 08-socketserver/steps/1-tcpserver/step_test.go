package main

// These tests run the step's Server in the test process, on a listener
// of their own (127.0.0.1, port 0): Serve takes the listener, so nothing
// needs building, and a test can hold two clients at once.

import (
	"bufio"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step; quiet is how long "nothing arrives"
// is given to prove itself.
const (
	wait  = 5 * time.Second
	quiet = 200 * time.Millisecond
)

func TestEachLineIsAnsweredInUpperCase(t *testing.T) {
	addr := serve(t)
	conn, replies := dial(t, addr)
	assert.Equal(t, "HELLO\n", ask(t, conn, replies, "hello"))
	assert.Equal(t, "SOCKET SERVER\n", ask(t, conn, replies, "socket server"))
}

// The pitfall of this step, which step 2 fixes: Python's TCPServer, and
// this Server, serve one client at a time.
func TestSecondClientWaitsForTheFirst(t *testing.T) {
	addr := serve(t)
	first, firstReplies := dial(t, addr)
	assert.Equal(t, "FIRST\n", ask(t, first, firstReplies, "first"))

	// The kernel completes the second connection (it waits in the
	// backlog), but nobody reads from it while the first is served.
	second, secondReplies := dial(t, addr)
	_, err := io.WriteString(second, "second\n")
	require.NoError(t, err)
	require.NoError(t, second.SetReadDeadline(time.Now().Add(quiet)))
	_, err = secondReplies.ReadString('\n')
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the second client should get nothing while the first is connected")

	// Once the first client leaves, the second is answered.
	first.Close()
	require.NoError(t, second.SetReadDeadline(time.Now().Add(wait)))
	reply, err := secondReplies.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "SECOND\n", reply)
}

// The README's "run it" session, with this test in nc's place: it sends
// the same bytes and half-closes as `nc -N` does.
func TestReadmeRunTranscript(t *testing.T) {
	addr := serve(t)
	conn, _ := dial(t, addr)
	_, err := io.WriteString(conn, "hello\nsocket server\n")
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	got, err := io.ReadAll(conn)
	require.NoError(t, err)
	assertTranscript(t, "step1-client", string(got))
}

// ---- helpers ----

// serve runs the step's Server on a fresh loopback listener until the
// test ends.
func serve(t *testing.T) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	srv := &Server{Handler: HandlerFunc(upper)}
	go srv.Serve(ln)
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

// ask sends one line and returns the reply line.
func ask(t *testing.T, conn net.Conn, replies *bufio.Reader, line string) string {
	t.Helper()
	_, err := io.WriteString(conn, line+"\n")
	require.NoError(t, err)
	reply, err := replies.ReadString('\n')
	require.NoError(t, err)
	return reply
}

// assertTranscript compares got with the lesson README's block marked
// <!-- transcript: name -->, leaving out its "$ " command lines.
func assertTranscript(t *testing.T, name, got string) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "<!-- transcript: "+name+" -->\n```console\n")
	require.True(t, ok, "README.md has no transcript %q", name)
	block, _, _ := strings.Cut(after, "```")
	var want []string
	for _, line := range strings.SplitAfter(block, "\n") {
		if line != "" && !strings.HasPrefix(line, "$ ") {
			want = append(want, line)
		}
	}
	assert.Equal(t, strings.Join(want, ""), got, "README transcript %q", name)
}
