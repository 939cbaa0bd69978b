package main

// Step 2's tests call fetch in this process, as main does, against small
// servers on a free loopback port: no internet, nothing to build.

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fix for step 1's pitfall: reading until the server closes gets the
// whole reply, whatever pieces it came in.
func TestTheWholeReplyArrivesHoweverItIsCut(t *testing.T) {
	head, body, _ := strings.Cut(okReply, "\r\n\r\n")
	cuts := map[string]func(net.Conn){
		"head, then body": func(conn net.Conn) {
			io.WriteString(conn, head+"\r\n\r\n")
			io.WriteString(conn, body)
		},
		"one byte per write": func(conn net.Conn) {
			for i := 0; i < len(okReply); i++ {
				conn.Write([]byte{okReply[i]})
			}
		},
	}
	for name, send := range cuts {
		t.Run(name, func(t *testing.T) {
			addr := serve(t, func(conn net.Conn) {
				readRequest(conn)
				send(conn)
			})
			var out bytes.Buffer
			require.NoError(t, fetch(addr, &out))
			assert.Equal(t, okReply, out.String())
		})
	}
}

// The README's session, with the real nc as the server: -N makes nc
// close its side once the reply is sent, so io.Copy sees the end.
func TestWorksWithNetcatAsTheServer(t *testing.T) {
	nc, err := exec.LookPath("nc")
	if err != nil {
		t.Skip("nc is not installed (on Debian: apt-get install netcat-openbsd); .ci/run installs it")
	}
	// OpenBSD nc with -v says where it listens, so port 0 works.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, nc, "-N", "-v", "-l", "127.0.0.1", "0")
	cmd.Stdin = strings.NewReader(okReply)
	var request bytes.Buffer
	cmd.Stdout = &request
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, _ := bufio.NewReader(stderr).ReadString('\n')
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	m := regexp.MustCompile(`^Listening on \S+ (\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Skipf("this nc does not print its port with -v -l (not OpenBSD netcat?): %q", line)
	}

	addr := net.JoinHostPort("127.0.0.1", m[1])
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- fetch(addr, &out) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("fetch did not return: nc did not close its side")
	}
	assert.Equal(t, okReply, out.String())

	// nc ends when the client has closed too; then its output is whole.
	select {
	case err := <-exited:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("nc did not end after the client closed")
	}
	assert.Equal(t, "GET / HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n", request.String())
}

// The pitfall, fixed in step 3: a server that accepts and never answers
// keeps the client waiting, with nothing in the client to end the wait.
func TestASilentServerKeepsTheClientWaitingForever(t *testing.T) {
	release := make(chan struct{})
	addr := serve(t, func(conn net.Conn) {
		readRequest(conn)
		select { // say nothing until the test says so
		case <-release:
		case <-time.After(wait):
		}
	})
	done := make(chan error, 1)
	go func() { done <- fetch(addr, io.Discard) }()

	// Forever cannot be waited for. The client has no timer of its own,
	// so if it has not returned after 300 ms, only the server can end it.
	select {
	case err := <-done:
		t.Fatalf("fetch returned while the server was silent: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release) // the server closes: only now does the client return
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("fetch did not return after the server closed")
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
