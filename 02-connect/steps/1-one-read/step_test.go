package main

// Step 1's tests call fetch in this process, as main does, against small
// servers on a free loopback port: no internet, nothing to build.

import (
	"bytes"
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
)

func TestSendsAGetAndPrintsTheReply(t *testing.T) {
	requests := make(chan string, 1)
	addr := serve(t, func(conn net.Conn) {
		requests <- readRequest(conn)
		io.WriteString(conn, okReply)
	})
	var out bytes.Buffer
	require.NoError(t, fetch(addr, &out))
	assert.Equal(t, "GET / HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n", <-requests)
	assert.True(t, strings.HasPrefix(okReply, out.String()), "what was printed is the start of the reply: %q", out.String())
	assert.NotEmpty(t, out.String())
}

func TestReadmeBareProgramTranscript(t *testing.T) {
	addr := serve(t, func(conn net.Conn) {
		readRequest(conn)
		io.WriteString(conn, okReply)
	})
	var out bytes.Buffer
	require.NoError(t, fetch(addr, &out))

	// The README's session, "$ " lines aside; a terminal shows HTTP's
	// "\r\n" as a line end.
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "<!-- transcript: step-1 -->\n```console\n")
	require.True(t, ok, "README.md has no step-1 transcript")
	block, _, _ := strings.Cut(after, "```")
	block = regexp.MustCompile(`(?m)^\$ .*\n`).ReplaceAllString(block, "")
	assert.Equal(t, block, strings.ReplaceAll(out.String(), "\r\n", "\n"))
}

// The pitfall, fixed in step 2: one Read returns what has arrived so
// far, which need not be the whole reply. This server sends the head,
// and the body only after the client has gone: one Read can never see it.
func TestOneReadGetsOnlyWhatHasArrivedSoFar(t *testing.T) {
	head, body, _ := strings.Cut(okReply, "\r\n\r\n")
	head += "\r\n\r\n"
	addr := serve(t, func(conn net.Conn) {
		readRequest(conn)
		io.WriteString(conn, head)
		io.Copy(io.Discard, conn) // until the client closes
		io.WriteString(conn, body)
	})
	var out bytes.Buffer
	require.NoError(t, fetch(addr, &out), "no error: the program does not know it missed anything")
	assert.True(t, strings.HasPrefix(head, out.String()), "only (part of) the head: %q", out.String())
	assert.NotContains(t, out.String(), "hello", "the body is lost")
}

// ---- helpers: small servers on a free loopback port ----

// wait bounds every blocking step of a test, so a broken step fails the
// test instead of hanging it.
const wait = 5 * time.Second

// okReply is a small HTTP reply: a head, a blank line, a body.
const okReply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n"

// serve starts a plain TCP server (not net/http: the point is to see the
// bytes) that runs handle for each connection, and returns its address.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
