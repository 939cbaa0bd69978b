//go:build exercise || solution

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step of a test, so a reader that waits for
// bytes that never come fails the test instead of hanging it.
const wait = 5 * time.Second

func TestBodyIsExactlyContentLengthBytesHoweverItArrives(t *testing.T) {
	// The server sends three bytes per write: the head and the body
	// arrive in many pieces, cut anywhere.
	br := serve(t, 3, "HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz", false)
	body, err := readBody(br, readHeadOK(t, br), 1<<20)
	require.NoError(t, err)
	assert.Equal(t, "abcdefghijklmnopqrstuvwxyz", string(body))
}

func TestBytesAfterTheBodyAreLeftForTheNextReader(t *testing.T) {
	// Two replies back to back, as on a kept-alive connection: the
	// first body ends where its Content-Length says, not at a Read.
	br := serve(t, 1024, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n", true)
	body, err := readBody(br, readHeadOK(t, br), 1<<20)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(body))
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Equal(t, "HTTP/1.1 204 No Content\r\n\r\n", string(rest), "the next reply must be left unread")
}

func TestHeaderNameIgnoresCase(t *testing.T) {
	for _, name := range []string{"Content-Length", "content-length", "CONTENT-LENGTH", "Content-length"} {
		head := []string{"HTTP/1.1 200 OK", "Server: test", name + ":  3 "}
		body, err := readBody(bufio.NewReader(strings.NewReader("abcdef")), head, 100)
		require.NoError(t, err, name)
		assert.Equal(t, "abc", string(body), name)
	}
}

func TestZeroLengthBodyReadsNothing(t *testing.T) {
	// The server says "no body" and then keeps the connection open. A
	// reader that still waited for a byte would wait until the deadline.
	br := serve(t, 1024, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false)
	body, err := readBody(br, readHeadOK(t, br), 1<<20)
	require.NoError(t, err)
	assert.Empty(t, body)
}

func TestBodyCutShortIsAnUnexpectedEOF(t *testing.T) {
	br := serve(t, 1024, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd", true)
	_, err := readBody(br, readHeadOK(t, br), 1<<20)
	require.Error(t, err)
	assert.True(t, errors.Is(err, errBodyCut), "want errBodyCut, got %v", err)
	assert.True(t, errors.Is(err, io.ErrUnexpectedEOF), "want io.ErrUnexpectedEOF too, got %v", err)
	assert.Contains(t, err.Error(), "4 of 10", "the error says how much arrived")
}

func TestServerThatClosesBeforeTheBodyIsAnUnexpectedEOF(t *testing.T) {
	br := serve(t, 1024, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true)
	_, err := readBody(br, readHeadOK(t, br), 1<<20)
	assert.True(t, errors.Is(err, errBodyCut), "want errBodyCut, got %v", err)
	assert.True(t, errors.Is(err, io.ErrUnexpectedEOF), "want io.ErrUnexpectedEOF, not io.EOF: %v", err)
}

func TestBodyLargerThanTheLimitIsRefusedBeforeReading(t *testing.T) {
	// The server claims a gigabyte, sends three bytes and waits. A
	// reader that started reading would wait until the deadline.
	br := serve(t, 1024, "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\nabc", false)
	_, err := readBody(br, readHeadOK(t, br), 1<<20)
	assert.True(t, errors.Is(err, errBodyTooLarge), "want errBodyTooLarge, got %v", err)
}

func TestMissingContentLengthIsAnError(t *testing.T) {
	head := []string{"HTTP/1.1 200 OK", "Content-Type: text/plain"}
	_, err := readBody(bufio.NewReader(strings.NewReader("hello")), head, 100)
	assert.True(t, errors.Is(err, errNoLength), "want errNoLength, got %v", err)
}

func TestInvalidOrConflictingContentLengthIsRefused(t *testing.T) {
	for _, values := range [][]string{
		{"abc"}, {"-1"}, {"+5"}, {""}, {"1 2"}, {"0x10"},
		{"99999999999999999999999"}, // does not fit in an int64
		{"5", "6"},                  // two that disagree
	} {
		head := []string{"HTTP/1.1 200 OK"}
		for _, v := range values {
			head = append(head, "Content-Length: "+v)
		}
		_, err := readBody(bufio.NewReader(strings.NewReader("hello, world")), head, 100)
		assert.True(t, errors.Is(err, errBadLength), "%q: want errBadLength, got %v", values, err)
	}
}

func TestTwoEqualContentLengthsAreAccepted(t *testing.T) {
	head := []string{"HTTP/1.1 200 OK", "Content-Length: 5", "content-length: 5"}
	body, err := readBody(bufio.NewReader(strings.NewReader("hello, world")), head, 100)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(body))
}

func TestCommandPrintsTheHeadAndTheBody(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()
	requests := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(wait))
		// Read the request's head, up to its blank line, before
		// answering, as a web server does.
		var request strings.Builder
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			request.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		requests <- request.String()
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
	}()

	host, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"-host", host, "-port", port, "-timeout", wait.String()}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	assert.Equal(t, "< HTTP/1.1 200 OK\n< Content-Length: 6\nbody: 6 bytes\nhello\n", out.String())
	select {
	case req := <-requests:
		assert.Equal(t, "GET / HTTP/1.1\r\nHost: "+ln.Addr().String()+"\r\nConnection: close\r\n\r\n", req)
	case <-time.After(wait):
		t.Fatal("the server never received a request")
	}
}

// serve starts a server that sends reply, chunk bytes per write, to the
// one client it accepts; if closeAfter, it then closes the connection,
// otherwise it keeps it open until the test ends. It returns a reader
// on the client's side of the connection, whose deadline is wait.
func serve(t *testing.T, chunk int, reply string, closeAfter bool) *bufio.Reader {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(wait))
		for i := 0; i < len(reply); i += chunk {
			if _, err := io.WriteString(conn, reply[i:min(i+chunk, len(reply))]); err != nil {
				return
			}
		}
		if !closeAfter {
			<-done
		}
	}()

	conn, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	return bufio.NewReader(conn)
}

// readHeadOK reads the head with the given readHead and requires it to
// work: these tests are about the body.
func readHeadOK(t *testing.T, br *bufio.Reader) []string {
	t.Helper()
	head, err := readHead(br)
	require.NoError(t, err)
	require.NotEmpty(t, head)
	require.Contains(t, head[0], "HTTP/1.1 ", "status line: "+strconv.Quote(head[0]))
	return head
}
