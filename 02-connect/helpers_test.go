package main

// The machinery of the tests in main_test.go: small servers that play a
// web server (or fail to), the program run in this process, and the
// README's transcripts.

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step of a test, so a broken program fails
// the test instead of hanging it.
const wait = 5 * time.Second

// okReply is what the local test server sends: a small HTTP reply. The
// README's nc example sends the same bytes.
const okReply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n"

// serve starts a plain TCP server (not net/http: the point is to see the
// bytes) that runs handle for each connection, and returns its address.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // closed by Cleanup
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(wait))
				handle(conn)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// answer reads the request's head, hands it to requests (if not nil),
// and sends reply.
func answer(reply string, requests chan<- string) func(net.Conn) {
	return func(conn net.Conn) {
		req := readRequest(conn)
		if requests != nil {
			requests <- req
		}
		io.WriteString(conn, reply)
	}
}

// silent reads the request and then sends nothing until the client
// leaves (or the test's deadline passes).
func silent(conn net.Conn) {
	readRequest(conn)
	io.Copy(io.Discard, conn)
}

// readRequest reads one request head, up to and including the blank
// line, byte by byte so nothing after it is consumed.
func readRequest(conn net.Conn) string {
	var req []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(req, []byte("\r\n\r\n")) && len(req) < 4096 {
		if _, err := conn.Read(b); err != nil {
			break
		}
		req = append(req, b[0])
	}
	return string(req)
}

// runClient runs the program with args and returns what it printed.
func runClient(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, args, nil, &out, io.Discard)
	return out.String(), err
}

// closedPort returns an address where nothing listens: a port that was
// just free and has been closed again.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}

// endless repeats s forever.
type endless string

func (e endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], e)
	}
	return n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var (
	ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]|localhost):\d+`)
	// The resolver's address ("on 10.0.0.53:53") is part of a DNS error
	// on some systems and differs from machine to machine.
	resolver = regexp.MustCompile(` on \S+:53:`)
)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring the "$ " command lines, the port
// numbers and the DNS server's address, which change from run to run.
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

	normalise := func(s string) string {
		return resolver.ReplaceAllString(ports.ReplaceAllString(s, "$1:PORT"), ":")
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "$ ") {
			want = append(want, normalise(line))
		}
	}
	have := strings.Split(normalise(strings.TrimSuffix(got, "\n")), "\n")
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}
