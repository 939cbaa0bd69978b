package main

// Step 3's tests run serve in this process, on sockets the test opens,
// so that a test can send from the server's own socket: that datagram
// leaves with the server's address as its source, as a forged one
// would. The socket counts what the server sends.

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test.
const wait = 5 * time.Second

func TestServerNeverAnswersADatagramFromItsOwnAddress(t *testing.T) {
	srv := startServe(t)
	// Forged: from the server's own socket to itself (not counted).
	_, err := srv.PacketConn.WriteTo(nil, srv.LocalAddr())
	require.NoError(t, err)
	// A real client queues behind it: once that one is answered, the
	// forged datagram has been read.
	_, err = ask(dial(t, srv.LocalAddr().String()), wait, 0)
	require.NoError(t, err)
	assert.Equal(t, 0, srv.countFor(t, loopWindow), "nothing more is sent")
	assert.Equal(t, int64(1), srv.sent.Load(), "only the real client is answered")
}

func TestTwoServersForgedAtEachOtherAnswerOnce(t *testing.T) {
	a, b := startServe(t), startServe(t)
	// Forged: from a to b (not counted). b answers a once; a takes the
	// 4 bytes for what they are, a reply.
	_, err := a.PacketConn.WriteTo(nil, b.LocalAddr())
	require.NoError(t, err)
	// A real client of each queues behind what reached it first.
	for _, srv := range []*server{b, a} {
		_, err = ask(dial(t, srv.LocalAddr().String()), wait, 0)
		require.NoError(t, err)
	}
	assert.Equal(t, 0, a.countFor(t, loopWindow), "nothing more is sent")
	assert.Equal(t, int64(2), b.sent.Load(), "b answers the forged request and its client")
	assert.Equal(t, int64(1), a.sent.Load(), "a answers its client, never b's reply")
}

func TestArticlesClientIsStillAnswered(t *testing.T) {
	srv := startServe(t)
	// An empty datagram, and exactly 4 bytes back.
	got, err := ask(dial(t, srv.LocalAddr().String()), wait, 0)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), got, 2*time.Second)
}

func TestDatagramFromAPrivilegedPortIsNotAnswered(t *testing.T) {
	srv := startServe(t)
	// Services such as echo live below 1024 and answer whatever arrives;
	// this socket plays one.
	service := privilegedSocket(t)
	_, err := service.WriteTo(nil, srv.LocalAddr())
	require.NoError(t, err)
	assert.Equal(t, 0, countDatagrams(t, service), "no answer to a port below 1024")
}

// The pitfall, fixed in step 4: rdate, the real client of RFC 868,
// counts from 1900, and reads this server's count from 1970 as a time
// decades away.
func TestRdateReadsATimeDecadesAway(t *testing.T) {
	rdate, err := exec.LookPath("rdate")
	if err != nil {
		t.Skip("rdate is not installed (on Debian: apt-get install rdate)")
	}
	srv := startServe(t)
	_, port, _ := net.SplitHostPort(srv.LocalAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, rdate, "-p", "-u", "-o", port, "127.0.0.1")
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "rdate said: %s", out)
	got, err := time.Parse(time.UnixDate, strings.TrimSpace(string(out)))
	require.NoError(t, err)
	years := got.Year() - time.Now().Year()
	t.Logf("rdate read %v, %d years away", got, years)
	assert.True(t, years > 50 || years < -50, "rdate read %s", strconv.Quote(string(out)))
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

// privilegedSocket binds a UDP socket on loopback to a port below 1024,
// or skips the test where this user may not.
func privilegedSocket(t *testing.T) net.PacketConn {
	t.Helper()
	var last error
	for port := 1023; port >= 1000; port-- {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			t.Cleanup(func() { conn.Close() })
			return conn
		}
		last = err
	}
	t.Skipf("cannot bind a port below 1024 here (needs root, or CAP_NET_BIND_SERVICE): %v", last)
	return nil
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
