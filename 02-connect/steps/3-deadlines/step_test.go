package main

// Step 3's tests call fetch in this process, as main does, against small
// servers on a free loopback port: no internet, nothing to build.

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fix for step 2's pitfall: the deadline ends the wait for a silent
// server.
func TestASilentServerTimesOut(t *testing.T) {
	addr := serve(t, func(conn net.Conn) {
		readRequest(conn)
		io.Copy(io.Discard, conn) // and say nothing until the client leaves
	})
	start := time.Now()
	err := fetch(addr, 100*time.Millisecond, io.Discard)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Less(t, time.Since(start), wait)
}

func TestTheWholeReplyStillArrives(t *testing.T) {
	addr := serve(t, func(conn net.Conn) {
		readRequest(conn)
		io.WriteString(conn, okReply)
	})
	var out bytes.Buffer
	require.NoError(t, fetch(addr, wait, &out))
	assert.Equal(t, okReply, out.String())
}

// The pitfall, fixed in the finished program: one call does the lookup
// and the connect, so every failure comes back as the same kind of error,
// a "dial" error, and none says which step failed or what to do next.
func TestEveryFailureIsADialErrorWithoutAHint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := ln.Addr().String()
	ln.Close() // nothing listens there now

	for _, addr := range []string{"no-such-host.invalid:80", refused} {
		err := fetch(addr, 2*time.Second, io.Discard)
		var op *net.OpError
		require.True(t, errors.As(err, &op), "want a *net.OpError for %s, got %v", addr, err)
		assert.Equal(t, "dial", op.Op, "a name that does not exist and a port that refuses look alike")
		assert.False(t, strings.Contains(err.Error(), "check") || strings.Contains(err.Error(), "docs/errors.md"),
			"nothing says what to do: %v", err)
	}
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
