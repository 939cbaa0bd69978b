package docs

// The tests in this file make each error of errors.md happen on loopback,
// check that Go classifies it the way the catalogue says, and compare its
// message with the one the catalogue quotes. If Go or the kernel change,
// these tests fail and the catalogue gets fixed.

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step, so a surprise fails a test instead of
// hanging it.
const wait = 5 * time.Second

// Winsock reports its own numbers, not the syscall.E* values Go invents
// for Windows, so every classification checks both.
const (
	wsaEACCES        = syscall.Errno(10013)
	wsaEMFILE        = syscall.Errno(10024)
	wsaEMSGSIZE      = syscall.Errno(10040)
	wsaEADDRINUSE    = syscall.Errno(10048)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
	wsaECONNABORTED  = syscall.Errno(10053)
	wsaECONNRESET    = syscall.Errno(10054)
	wsaETIMEDOUT     = syscall.Errno(10060)
	wsaECONNREFUSED  = syscall.Errno(10061)
)

func TestCatalogueEADDRINUSE(t *testing.T) {
	ln := listen(t)

	// A second listener on the very same address and port.
	_, err := net.Listen("tcp", ln.Addr().String())

	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE), "want EADDRINUSE, got %v", err)
	checkMessage(t, "eaddrinuse", err)
}

func TestCatalogueEADDRNOTAVAIL(t *testing.T) {
	// 192.0.2.1 is reserved for documentation (RFC 5737): no machine
	// has it, so this one cannot bind to it. Nothing is sent anywhere.
	_, err := net.Listen("tcp", "192.0.2.1:0")

	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, wsaEADDRNOTAVAIL), "want EADDRNOTAVAIL, got %v", err)
	checkMessage(t, "eaddrnotavail", err)
}

func TestCatalogueECONNREFUSED(t *testing.T) {
	addr := closedPort(t)

	_, err := net.DialTimeout("tcp", addr, wait)

	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, wsaECONNREFUSED), "want ECONNREFUSED, got %v", err)
	checkMessage(t, "econnrefused", err)
}

func TestCatalogueECONNRESET(t *testing.T) {
	client, server := pair(t)

	// Linger 0 makes Close send RST instead of FIN: the abortive close.
	require.NoError(t, server.(*net.TCPConn).SetLinger(0))
	require.NoError(t, server.Close())
	_, err := client.Read(make([]byte, 10))

	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, wsaECONNRESET), "want ECONNRESET, got %v", err)
	checkMessage(t, "econnreset", err)
}

func TestCatalogueECONNRESETWhenClosingWithUnreadData(t *testing.T) {
	client, server := pair(t)

	// The client sends, the server closes without reading it: the
	// kernel answers the unread bytes with RST, not FIN.
	_, err := client.Write([]byte("never read\n"))
	require.NoError(t, err)
	readAtLeast(t, server, 1, "n") // the rest stays unread
	require.NoError(t, server.Close())
	_, err = client.Read(make([]byte, 10))

	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, wsaECONNRESET), "want ECONNRESET, got %v", err)
}

func TestCatalogueEPIPE(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Winsock has no EPIPE: a write after a reset fails with WSAECONNRESET or WSAECONNABORTED (see errors.md#epipe)")
	}
	client, server := pair(t)

	// The peer aborts; the first read reports the reset, and from then
	// on the connection is dead in both directions.
	require.NoError(t, server.(*net.TCPConn).SetLinger(0))
	require.NoError(t, server.Close())
	_, err := client.Read(make([]byte, 10))
	require.Error(t, err, "the reset should arrive")
	_, err = client.Write([]byte("anyone there?\n"))

	require.Error(t, err)
	if runtime.GOOS == "linux" {
		assert.ErrorIs(t, err, syscall.EPIPE)
	} else {
		assert.True(t, errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET), "want EPIPE or ECONNRESET, got %v", err)
	}
	checkMessage(t, "epipe", err)
}

func TestCatalogueEPIPEAfterOwnShutdown(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Winsock reports WSAESHUTDOWN (10058) here, not EPIPE")
	}
	client, _ := pair(t)

	// Writing after our own CloseWrite (shutdown(SHUT_WR)) is the
	// other way to meet a broken pipe.
	require.NoError(t, client.(*net.TCPConn).CloseWrite())
	_, err := client.Write([]byte("too late\n"))

	assert.ErrorIs(t, err, syscall.EPIPE)
}

func TestCatalogueReadTimeout(t *testing.T) {
	client, _ := pair(t)

	// The server never sends; the deadline ends the wait.
	require.NoError(t, client.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err := client.Read(make([]byte, 10))

	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var netErr net.Error
	require.True(t, errors.As(err, &netErr))
	assert.True(t, netErr.Timeout())
	checkMessage(t, "timeout-read", err)
}

func TestCatalogueTimeoutDoesNotBreakTheConnection(t *testing.T) {
	client, server := pair(t)

	require.NoError(t, client.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err := client.Read(make([]byte, 10))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)

	// After a timeout the connection is still good: extend the deadline
	// and read again.
	_, err = server.Write([]byte("late"))
	require.NoError(t, err)
	require.NoError(t, client.SetReadDeadline(time.Now().Add(wait)))
	readAtLeast(t, client, 4, "late")
}

func TestCatalogueDialTimeoutByContext(t *testing.T) {
	// A context that has already expired makes the dial give up at once
	// with the same "i/o timeout" text as a dial that took too long,
	// but it is context.DeadlineExceeded, not os.ErrDeadlineExceeded.
	addr := listen(t).Addr().String()
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	var d net.Dialer

	_, err := d.DialContext(ctx, "tcp", addr)

	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, os.ErrDeadlineExceeded)
	var netErr net.Error
	require.True(t, errors.As(err, &netErr))
	assert.True(t, netErr.Timeout())
	checkMessage(t, "timeout-dial", err)
}

func TestCatalogueEOF(t *testing.T) {
	client, server := pair(t)

	// A normal close sends FIN; the reader sees the end of the stream.
	require.NoError(t, server.Close())
	n, err := client.Read(make([]byte, 10))

	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, io.EOF, err, "Read returns io.EOF itself, unwrapped")
	checkMessage(t, "eof", err)
}

func TestCatalogueClosed(t *testing.T) {
	ln := listen(t)
	accepted := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		accepted <- err
	}()

	// Closing the listener is how a server stops a blocked Accept.
	require.NoError(t, ln.Close())
	var err error
	select {
	case err = <-accepted:
	case <-time.After(wait):
		t.Fatal("Accept did not return after Close")
	}

	require.Error(t, err)
	assert.ErrorIs(t, err, net.ErrClosed)
	checkMessage(t, "closed", err)
}

func TestCatalogueClosedOnOwnConnection(t *testing.T) {
	client, _ := pair(t)
	require.NoError(t, client.Close())

	_, err := client.Read(make([]byte, 10))

	assert.ErrorIs(t, err, net.ErrClosed)
	checkMessage(t, "closed-read", err)
}

func TestCatalogueNoSuchHost(t *testing.T) {
	// A resolver whose every query goes to a tiny DNS server on
	// loopback that answers "no such name" (NXDOMAIN), as a real one
	// does for a name that does not exist. Nothing leaves the machine.
	dns := fakeDNS(t)
	d := net.Dialer{Timeout: wait, Resolver: &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", dns.addr)
		},
	}}

	_, err := d.Dial("tcp", "no-such-host.invalid:80")

	require.Error(t, err)
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr)
	assert.True(t, dnsErr.IsNotFound, "IsNotFound marks an answer of 'no such name'")
	assert.False(t, dnsErr.Timeout())
	assert.NotZero(t, dns.queries(), "the resolver asked the DNS server")
	checkMessage(t, "no-such-host", err)
}

func TestCatalogueEMSGSIZE(t *testing.T) {
	if runtime.GOOS == "darwin" {
		t.Log("macOS refuses datagrams above net.inet.udp.maxdgram (9216 bytes by default) already")
	}
	reader, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { reader.Close() })
	conn, err := net.Dial("udp", reader.LocalAddr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))

	// 65535 (the IP length field) - 20 (IPv4 header) - 8 (UDP header)
	// = 65507 bytes is the most one IPv4 datagram can carry.
	_, err = conn.Write(make([]byte, 65508))

	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, wsaEMSGSIZE), "want EMSGSIZE, got %v", err)
	checkMessage(t, "emsgsize", err)
}

func TestLargestIPv4DatagramGoesThroughOnLoopback(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the send limits of other systems are lower (macOS: 9216 bytes by default)")
	}
	reader, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { reader.Close() })
	require.NoError(t, reader.SetDeadline(time.Now().Add(wait)))
	conn, err := net.Dial("udp4", reader.LocalAddr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })

	_, err = conn.Write(make([]byte, 65507))
	require.NoError(t, err)
	n, _, err := reader.ReadFrom(make([]byte, 70000))
	require.NoError(t, err)
	assert.Equal(t, 65507, n)
}

func TestUDPReadTruncatesALongDatagramSilently(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Winsock reports WSAEMSGSIZE (10040) when the buffer is too small")
	}
	reader, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { reader.Close() })
	require.NoError(t, reader.SetDeadline(time.Now().Add(wait)))
	conn, err := net.Dial("udp4", reader.LocalAddr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })

	_, err = conn.Write([]byte("0123456789"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	n, _, flags, _, err := reader.ReadMsgUDP(buf, nil)

	// No error: the first 4 bytes, the rest gone for good. Only the
	// MSG_TRUNC flag tells.
	require.NoError(t, err)
	assert.Equal(t, "0123", string(buf[:n]))
	assert.NotZero(t, flags&msgTrunc, "MSG_TRUNC should be set")
}

// ---- the catalogue's quoted messages ----

// portNumbers matches an IP address (or localhost) with its port, which
// change from run to run.
var portNumbers = regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]|localhost):\d+`)

// dnsServer matches the DNS server a lookup error names: it comes from
// the machine's resolver configuration.
var dnsServer = regexp.MustCompile(`( on )\S+(: no such host)`)

// normalise hides what differs between runs and machines.
func normalise(msg string) string {
	msg = dnsServer.ReplaceAllString(msg, "${1}DNS-SERVER$2")
	return portNumbers.ReplaceAllString(msg, "$1:PORT")
}

// quotedMessage returns the message errors.md quotes after the marker
// <!-- message: key -->, in the ```text block that follows it.
func quotedMessage(t *testing.T, key string) (string, bool) {
	t.Helper()
	page, err := os.ReadFile("errors.md")
	require.NoError(t, err)
	msg, ok := quotedMessages(string(page))[key]
	return msg, ok
}

var messageMarker = regexp.MustCompile("(?m)^<!-- message: ([a-z0-9-]+) -->\n```text\n(.*)\n```$")

func quotedMessages(page string) map[string]string {
	msgs := map[string]string{}
	for _, m := range messageMarker.FindAllStringSubmatch(page, -1) {
		msgs[m[1]] = m[2]
	}
	return msgs
}

// checkMessage compares err's message with the one errors.md quotes under
// key. Messages are compared on Linux only: the catalogue quotes Linux,
// and other systems word some of them differently.
func checkMessage(t *testing.T, key string, err error) {
	t.Helper()
	want, ok := quotedMessage(t, key)
	if !ok {
		t.Errorf("errors.md has no <!-- message: %s --> followed by a ```text block; the message is:\n%s", key, err)
		return
	}
	if runtime.GOOS != "linux" {
		t.Logf("on %s the message is %q (errors.md quotes Linux: %q)", runtime.GOOS, err, want)
		return
	}
	assert.Equal(t, normalise(want), normalise(err.Error()), "errors.md quotes a different message under %q", key)
}

// ---- helpers ----

// listen returns a TCP listener on 127.0.0.1 and a port the kernel chose.
// It is made the way lessons make theirs, net.Listen("tcp", ...), rather
// than with nettest, whose "tcp4" listeners word their errors "accept
// tcp4 ..." where a lesson's say "accept tcp ...".
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// pair returns both ends of one TCP connection over loopback, each with
// a deadline.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln := listen(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- conn
	}()
	client = dial(t, ln.Addr().String())
	select {
	case server = <-accepted:
	case <-time.After(wait):
		t.Fatal("no connection accepted")
	}
	require.NotNil(t, server, "accept failed")
	t.Cleanup(func() { server.Close() })
	require.NoError(t, server.SetDeadline(time.Now().Add(wait)))
	require.NoError(t, ln.Close())
	return client, server
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	return conn
}

// closedPort returns an address where nothing listens: a port that was
// free a moment ago and has been closed again.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// readAtLeast reads until n bytes have arrived and checks they start
// with want.
func readAtLeast(t *testing.T, conn net.Conn, n int, want string) {
	t.Helper()
	buf := make([]byte, n)
	_, err := io.ReadFull(conn, buf)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(buf), want[:min(len(want), n)]), "read %q", buf)
}

// dnsStub is a DNS server on loopback that answers every question with
// "no such name".
type dnsStub struct {
	addr string
	mu   sync.Mutex
	n    int
}

func (s *dnsStub) queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func fakeDNS(t *testing.T) *dnsStub {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	s := &dnsStub{addr: pc.LocalAddr().String()}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed by Cleanup
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			s.mu.Lock()
			s.n++
			s.mu.Unlock()
			reply := dnsmessage.Message{
				Header: dnsmessage.Header{
					ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired,
					RecursionAvailable: true, RCode: dnsmessage.RCodeNameError,
				},
				Questions: []dnsmessage.Question{q},
			}
			out, err := reply.Pack()
			if err != nil {
				continue
			}
			pc.WriteTo(out, from)
		}
	}()
	return s
}
