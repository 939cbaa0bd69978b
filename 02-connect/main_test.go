package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

func TestSendsAGetWithHostAndConnectionClose(t *testing.T) {
	requests := make(chan string, 1)
	addr := serve(t, answer(okReply, requests))
	_, err := runClient(t, "-host", "127.0.0.1", "-port", portOf(t, addr))
	require.NoError(t, err)

	// The Host header carries the port, because it is not 80.
	want := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n"
	assert.Equal(t, want, <-requests)
}

func TestPrintsTheStatusLineAndHeadersButNotTheBody(t *testing.T) {
	addr := serve(t, answer(okReply, nil))
	out, err := runClient(t, "-host", "127.0.0.1", "-port", portOf(t, addr))
	require.NoError(t, err)
	assert.Contains(t, out, "< HTTP/1.1 200 OK\n< Content-Type: text/plain\n< Content-Length: 6\n")
	assert.NotContains(t, out, "hello", "the body is not part of the head")
}

func TestPrintsTheResolvedAddressesAndTheOneItConnectedTo(t *testing.T) {
	addr := serve(t, answer(okReply, nil))
	// "localhost" is a name, so it goes through the resolver. Where it
	// also resolves to ::1, that attempt is refused (the server listens
	// on 127.0.0.1 only) and the next address is tried.
	out, err := runClient(t, "-host", "localhost", "-port", portOf(t, addr))
	require.NoError(t, err)
	assert.Contains(t, out, "localhost resolves to:\n")
	assert.Contains(t, out, "\n  127.0.0.1\n")
	assert.Contains(t, out, "connected to "+addr+" from 127.0.0.1:")
}

func TestFallsBackToTheNextAddressWhenOneFails(t *testing.T) {
	addr := serve(t, answer(okReply, nil))
	port, err := strconv.Atoi(portOf(t, addr))
	require.NoError(t, err)

	// The server listens on 127.0.0.1 only, so the same port on another
	// loopback address refuses: that is the address that fails.
	var refusing net.IPAddr
	switch {
	case nettest.SupportsIPv6():
		refusing = net.IPAddr{IP: net.IPv6loopback}
	case runtime.GOOS == "linux":
		refusing = net.IPAddr{IP: net.ParseIP("127.0.0.2")} // all of 127/8 is loopback on Linux
	default:
		t.Skip("needs a second loopback address: no IPv6 here, and 127.0.0.2 is not configured by default outside Linux")
	}
	addrs := []net.IPAddr{refusing, {IP: net.ParseIP("127.0.0.1")}}

	var out bytes.Buffer
	conn, err := connectFirst(context.Background(), addrs, port, wait, &out)
	require.NoError(t, err, "the second address should have worked; output:\n%s", out.String())
	defer conn.Close()
	assert.Equal(t, addr, conn.RemoteAddr().String())
	assert.Contains(t, out.String(), "  failed: ")
	assert.Contains(t, out.String(), "  trying the next address\n")
}

func TestHeadSplitIntoManySmallWritesIsReadWhole(t *testing.T) {
	// TCP is a stream: the server's bytes may arrive in any slices. This
	// server sends its head one byte per write.
	addr := serve(t, func(conn net.Conn) {
		readRequest(conn)
		for i := 0; i < len(okReply); i++ {
			if _, err := conn.Write([]byte{okReply[i]}); err != nil {
				return
			}
		}
	})
	out, err := runClient(t, "-host", "127.0.0.1", "-port", portOf(t, addr))
	require.NoError(t, err)
	assert.Contains(t, out, "< HTTP/1.1 200 OK\n< Content-Type: text/plain\n< Content-Length: 6\n")
}

func TestUnknownHostSaysNoSuchHost(t *testing.T) {
	// .invalid is reserved (RFC 2606, RFC 6761): no name under it exists,
	// so every resolver answers "no such host" (NXDOMAIN).
	out, err := runClient(t, "-host", "no-such-host.invalid")
	require.Error(t, err)
	var dnsErr *net.DNSError
	require.True(t, errors.As(err, &dnsErr), "want a *net.DNSError, got %T: %v", err, err)
	if !dnsErr.IsNotFound {
		t.Skipf("no DNS server answered here, so the name could not be looked up at all: %v", err)
	}
	assert.Contains(t, explain(err), "the name does not exist; check the spelling of -host (see docs/errors.md#no-such-host)")
	assert.Empty(t, out, "nothing is printed before the name resolves")
}

func TestRefusedPortSaysConnectionRefused(t *testing.T) {
	addr := closedPort(t)
	_, err := runClient(t, "-host", "127.0.0.1", "-port", portOf(t, addr))
	require.Error(t, err)
	assert.True(t, isErrno(err, syscall.ECONNREFUSED), "want connection refused, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#econnrefused)")

	// Python's connect_ex returns this number instead of raising; in Go
	// it is inside the error, and errors.As takes it out.
	var errno syscall.Errno
	require.True(t, errors.As(err, &errno))
	assert.NotZero(t, errno)
}

func TestSilentServerTimesOutWithAClearMessage(t *testing.T) {
	// This server accepts and reads the request, then says nothing.
	addr := serve(t, silent)
	start := time.Now()
	out, err := runClient(t, "-host", "127.0.0.1", "-port", portOf(t, addr), "-timeout", "100ms")
	require.Error(t, err)
	assert.Less(t, time.Since(start), wait, "the deadline must end the wait")
	// A read deadline gives os.ErrDeadlineExceeded.
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Contains(t, explain(err), "no answer within -timeout")
	assert.Contains(t, explain(err), "(see docs/errors.md#timeout)")
	assert.Contains(t, out, "> Connection: close\n", "the request went out before the wait")
}

func TestServerThatStopsInTheMiddleOfTheHeadTimesOut(t *testing.T) {
	addr := serve(t, func(conn net.Conn) {
		readRequest(conn)
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: te")
		io.Copy(io.Discard, conn) // and then nothing, until the client leaves
	})
	out, err := runClient(t, "-host", "127.0.0.1", "-port", portOf(t, addr), "-timeout", "100ms")
	require.Error(t, err)
	assert.True(t, isTimeout(err), "want a timeout, got %v", err)
	assert.Contains(t, out, "< HTTP/1.1 200 OK\n", "the lines that did arrive are shown")
}

func TestEndlessHeadFailsAtTheSizeLimit(t *testing.T) {
	// This server sends header lines forever and never the blank line.
	addr := serve(t, func(conn net.Conn) {
		readRequest(conn)
		io.WriteString(conn, "HTTP/1.1 200 OK\r\n")
		line := []byte("X-Filler: " + strings.Repeat("x", 100) + "\r\n")
		for {
			if _, err := conn.Write(line); err != nil {
				return // the client gave up and closed
			}
		}
	})
	out, err := runClient(t, "-host", "127.0.0.1", "-port", portOf(t, addr))
	require.Error(t, err)
	assert.ErrorIs(t, err, errHeadTooLarge)
	assert.Contains(t, explain(err), "larger than 16 KiB: is a web server listening on that port?")
	assert.Less(t, len(out), 2*maxHead, "the printed head is bounded too")
}

func TestReadHeadNeverReadsMoreThanTheLimit(t *testing.T) {
	// An endless source of header lines, counting what is taken from
	// it: however much a server sends, readHead buffers at most maxHead.
	src := &countingReader{r: endless("X-Filler: xxxxxxxx\r\n")}
	_, err := readHead(src)
	assert.ErrorIs(t, err, errNotHTTP, "the first line is not a status line")

	src = &countingReader{r: io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\n"), endless("X: y\r\n"))}
	_, err = readHead(src)
	assert.ErrorIs(t, err, errHeadTooLarge)
	assert.LessOrEqual(t, src.n, int64(maxHead))
}

func TestGarbageReplyIsNotHTTP(t *testing.T) {
	// An SSH server greets first, with a line that is not HTTP.
	addr := serve(t, func(conn net.Conn) {
		io.WriteString(conn, "SSH-2.0-OpenSSH_9.6\r\n")
		io.Copy(io.Discard, conn)
	})
	_, err := runClient(t, "-host", "127.0.0.1", "-port", portOf(t, addr))
	require.Error(t, err)
	assert.ErrorIs(t, err, errNotHTTP)
	assert.Contains(t, err.Error(), `its first line is "SSH-2.0-OpenSSH_9.6"`)
}

func TestServerClosingBeforeTheEndOfTheHeadIsAnUnexpectedEOF(t *testing.T) {
	addr := serve(t, func(conn net.Conn) {
		readRequest(conn)
		io.WriteString(conn, "HTTP/1.1 200 OK\r\n")
	})
	_, err := runClient(t, "-host", "127.0.0.1", "-port", portOf(t, addr))
	require.Error(t, err)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Contains(t, explain(err), "(see docs/errors.md#eof)")
}

func TestBadPortIsAUsageErrorThatNamesBothForms(t *testing.T) {
	for _, port := range []string{"0", "65536", "eighty", "-1"} {
		var stderr bytes.Buffer
		err := run(context.Background(), []string{"-port", port}, nil, io.Discard, &stderr)
		assert.ErrorIs(t, err, errUsage, "-port %s", port)
		assert.Equal(t, fmt.Sprintf("invalid -port %q: want a number from 1 to 65535, or a service name such as http\n", port), stderr.String())
	}
}

func TestPortCanBeAServiceName(t *testing.T) {
	// The system's list of services (or Go's own, where there is none)
	// knows the well-known ports by name, as Python's getservbyname does.
	for name, want := range map[string]int{"http": 80, "https": 443, "8080": 8080} {
		port, err := parsePort(name)
		require.NoError(t, err, "-port %s", name)
		assert.Equal(t, want, port, "-port %s", name)
	}
}

func TestBadFlagIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-no-such-flag"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-host")
}

func TestWorksWithNetcatAsTheServer(t *testing.T) {
	nc, err := exec.LookPath("nc")
	if err != nil {
		t.Skip("nc is not installed (on Debian: apt-get install netcat-openbsd); .ci/run installs it")
	}
	// OpenBSD nc with -v says where it listens, so port 0 works: nc
	// listens on a free port, sends okReply, closes its side (-N, as in
	// the README) and prints the request.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, nc, "-N", "-v", "-l", "127.0.0.1", "0")
	cmd.Stdin = strings.NewReader(okReply)
	var got bytes.Buffer
	cmd.Stdout = &got
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	// If the test ends early, cancel kills nc.
	line, _ := bufio.NewReader(stderr).ReadString('\n')
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	m := regexp.MustCompile(`^Listening on \S+ (\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Skipf("this nc does not print its port with -v -l (not OpenBSD netcat?): %q", line)
	}
	out, err := runClient(t, "-host", "127.0.0.1", "-port", m[1])
	require.NoError(t, err)
	assert.Contains(t, out, "< HTTP/1.1 200 OK\n")

	// nc ends when our client closes; then its output is complete.
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("nc did not end after the client closed")
	}
	assert.Contains(t, got.String(), "GET / HTTP/1.1\r\nHost: 127.0.0.1:"+m[1]+"\r\n")
}

// The README shows what a learner sees; these tests produce the same
// sessions and compare them line by line, ports aside.

func TestReadmeTranscript(t *testing.T) {
	addr := serve(t, answer(okReply, nil))
	out, err := runClient(t, "-host", "127.0.0.1", "-port", portOf(t, addr))
	require.NoError(t, err)
	assertTranscript(t, "local", out)
}

func TestReadmeUnknownHostTranscript(t *testing.T) {
	_, err := runClient(t, "-host", "no-such-host.invalid")
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && !dnsErr.IsNotFound {
		t.Skipf("no DNS server answered here: %v", err)
	}
	require.Error(t, err)
	assertTranscript(t, "unknown-host", "error: "+explain(err)+"\n")
}

func TestReadmeRefusedTranscript(t *testing.T) {
	addr := closedPort(t)
	out, err := runClient(t, "-host", "127.0.0.1", "-port", portOf(t, addr))
	require.Error(t, err)
	assertTranscript(t, "refused", out+"error: "+inLinuxWords(t, err, explain(err))+"\n")
}

func TestReadmeSilentServerTranscript(t *testing.T) {
	addr := serve(t, silent)
	out, err := runClient(t, "-host", "127.0.0.1", "-port", portOf(t, addr), "-timeout", "200ms")
	require.Error(t, err)
	assertTranscript(t, "silent", out+"error: "+explain(err)+"\n")
}
