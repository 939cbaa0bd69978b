package main

// Step 2's tests run serve and ask in this process, on sockets the test
// opens, so that a test can send from the server's own socket: that
// datagram leaves with the server's address as its source, as a forged
// one would. The socket counts what the server sends.

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test.
const wait = 5 * time.Second

func TestLostDatagramIsSentAgain(t *testing.T) {
	// The first request is lost; the second is answered.
	peer := listen(t)
	go func() {
		buf := make([]byte, 64*1024)
		for i := 1; ; i++ {
			_, from, err := peer.ReadFrom(buf)
			if err != nil {
				return // closed at cleanup
			}
			if i > 1 {
				peer.WriteTo(binary.BigEndian.AppendUint32(nil, 1), from)
			}
		}
	}()
	got, err := ask(dial(t, peer.LocalAddr().String()), 50*time.Millisecond, 3)
	require.NoError(t, err)
	assert.Equal(t, time.Unix(1, 0), got)
}

func TestSilentServerMakesTheClientGiveUp(t *testing.T) {
	peer := listen(t) // receives, never answers
	start := time.Now()
	_, err := ask(dial(t, peer.LocalAddr().String()), 20*time.Millisecond, 3)
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "want a timeout, got %v", err)
	// Four sends, waiting 20, 40, 80 and 160 ms: no longer for ever.
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	assert.Equal(t, 4, countDatagrams(t, peer))
}

// The pitfall, fixed in step 3: the server answers its own answer.
func TestServerAnswersADatagramFromItsOwnAddressForever(t *testing.T) {
	srv := startServe(t)
	// One empty datagram from the server's own socket to itself: the
	// forged datagram an attacker would send. The server answers it to
	// itself, then answers that answer, and so on.
	_, err := srv.WriteTo(nil, srv.LocalAddr())
	require.NoError(t, err)
	sent := srv.countFor(t, loopWindow)
	t.Logf("the server answered itself %d times (counting stops at %d) within %v", sent, loopLimit, loopWindow)
	assert.Greater(t, sent, 10, "one forged datagram, and the server keeps answering itself")
}

// The same loop between two servers: the classic echo/chargen loop.
func TestTwoServersAnswerEachOtherForever(t *testing.T) {
	a, b := startServe(t), startServe(t)
	// One request forged from a to b: b answers a, which answers b...
	_, err := a.WriteTo(nil, b.LocalAddr())
	require.NoError(t, err)
	sent := b.countFor(t, loopWindow)
	t.Logf("b answered a %d times (counting stops at %d) within %v", sent, loopLimit, loopWindow)
	assert.Greater(t, sent, 10, "one forged datagram, and the two servers answer each other on and on")
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
func startServe(t *testing.T) *server {
	t.Helper()
	srv := &server{PacketConn: listen(t)}
	done := make(chan error, 1)
	go func() { done <- serve(srv) }()
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

// countDatagrams reads what has queued up at peer: a short wait that
// sees nothing more means there is nothing more (loopback delivers at
// once).
func countDatagrams(t *testing.T, peer net.PacketConn) int {
	t.Helper()
	buf := make([]byte, 64*1024)
	for count := 0; ; count++ {
		require.NoError(t, peer.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
		if _, _, err := peer.ReadFrom(buf); err != nil {
			require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "%v", err)
			return count
		}
	}
}
