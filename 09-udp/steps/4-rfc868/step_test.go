package main

// Step 4's tests run serve and ask in this process, on sockets the test
// opens, and the real rdate where it is installed.

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test.
const wait = 5 * time.Second

func TestRdateReadsTheTime(t *testing.T) {
	rdate, err := exec.LookPath("rdate")
	if err != nil {
		t.Skip("rdate is not installed (on Debian: apt-get install rdate)")
	}
	srv := startServe(t, true)
	_, port, _ := net.SplitHostPort(srv.LocalAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, rdate, "-p", "-u", "-o", port, "127.0.0.1")
	cmd.Env = append(os.Environ(), "TZ=UTC")
	before := time.Now().Truncate(time.Second)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "rdate said: %s", out)
	got, err := time.Parse(time.UnixDate, strings.TrimSpace(string(out)))
	require.NoError(t, err)
	assert.WithinRange(t, got, before, time.Now())
}

func TestClientAndServerAgreeWithRFC868(t *testing.T) {
	srv := startServe(t, true)
	before := time.Now().Truncate(time.Second)
	got, err := ask(dial(t, srv.LocalAddr().String()), wait, 0, true)
	require.NoError(t, err)
	assert.WithinRange(t, got, before, time.Now())
}

func TestRFC868AnswersOnlyAnEmptyDatagram(t *testing.T) {
	srv := startServe(t, true)
	conn := dial(t, srv.LocalAddr().String())
	_, err := conn.Write([]byte{0}) // a request to the article's server, not to RFC 868's
	require.NoError(t, err)
	_, err = ask(conn, wait, 0, true) // the empty one queues behind it
	require.NoError(t, err)
	assert.Equal(t, int64(1), srv.sent.Load(), "only the empty datagram is answered")
}

func TestArticlesClientIsStillAnswered(t *testing.T) {
	srv := startServe(t, false)
	before := time.Now().Truncate(time.Second)
	got, err := ask(dial(t, srv.LocalAddr().String()), wait, 0, false)
	require.NoError(t, err)
	assert.WithinRange(t, got, before, time.Now())
}

func TestServerNeverAnswersADatagramFromItsOwnAddress(t *testing.T) {
	srv := startServe(t, true)
	_, err := srv.PacketConn.WriteTo(nil, srv.LocalAddr()) // forged, not counted
	require.NoError(t, err)
	_, err = ask(dial(t, srv.LocalAddr().String()), wait, 0, true)
	require.NoError(t, err)
	assert.Equal(t, 0, srv.countFor(t, loopWindow), "nothing more is sent")
	assert.Equal(t, int64(1), srv.sent.Load(), "only the real client is answered")
}

// The pitfall, fixed in the finished program: 32 bits of seconds from
// 1900 run out on 2036-02-07 at 06:28:16 UTC, and the count starts
// again at 0. This client reads the second after that as 1900.
func TestAfterThe2036WrapTheClientReads1900(t *testing.T) {
	peer := listen(t) // a server whose clock is one second past the wrap
	go func() {
		buf := make([]byte, 64*1024)
		for {
			_, from, err := peer.ReadFrom(buf)
			if err != nil {
				return // closed at cleanup
			}
			peer.WriteTo(binary.BigEndian.AppendUint32(nil, 1), from)
		}
	}()
	got, err := ask(dial(t, peer.LocalAddr().String()), wait, 0, true)
	require.NoError(t, err)
	assert.Equal(t, time.Date(1900, 1, 1, 0, 0, 1, 0, time.UTC), got, "not 2036-02-07T06:28:17Z")
}

// ---- helpers ----

// loopWindow is how long a loop test watches: on loopback a looping
// server answers thousands of times in it, and then the test closes its
// sockets, which ends the loop.
const loopWindow = 100 * time.Millisecond

// loopLimit is where a loop test stops counting.
const loopLimit = 1000

// server is a socket that serve runs on, counting the datagrams sent.
type server struct {
	net.PacketConn
	sent atomic.Int64
}

func (s *server) WriteTo(p []byte, addr net.Addr) (int, error) {
	s.sent.Add(1)
	return s.PacketConn.WriteTo(p, addr)
}

// countFor returns how many datagrams the server sends from now on,
// watching for d at most and stopping at loopLimit: enough to prove a
// loop, and the test then closes the sockets, which ends it.
func (s *server) countFor(t *testing.T, d time.Duration) int {
	t.Helper()
	before := s.sent.Load()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			return int(s.sent.Load() - before)
		case <-tick.C:
			if n := int(s.sent.Load() - before); n >= loopLimit {
				return n
			}
		}
	}
}

// startServe runs serve on a fresh socket on loopback. At cleanup the
// socket is closed, which ends serve and any loop.
func startServe(t *testing.T, rfc868 bool) *server {
	t.Helper()
	srv := &server{PacketConn: listen(t)}
	done := make(chan error, 1)
	go func() { done <- serve(srv, rfc868) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("serve did not return after its socket was closed")
		}
	})
	return srv
}

func listen(t *testing.T) net.PacketConn {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}
