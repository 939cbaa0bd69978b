//go:build exercise || solution

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ---- slowness is judged over time: bursts push out nobody who reads ----

func TestBurstOfNewcomersPushesOutNoMemberWhoReads(t *testing.T) {
	// All from one address, so without the per-address cap.
	srv := startServer(t, "-max-conns-per-ip", "0")
	a := join(t, srv.addr)

	// 200 newcomers at once. Each reads everything it is sent, as a
	// well-behaved client does, until the test ends.
	const newcomers = 200
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range newcomers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readEverything(t, srv.addr, done)
		}()
	}
	// a hears of each of them, and is still a member afterwards.
	for range newcomers {
		require.NoError(t, a.SetReadDeadline(time.Now().Add(wait)))
		assert.Regexp(t, `^\* \S+ joined$`, a.next(t))
	}
	b := join(t, srv.addr)
	a.expect(t, "* "+b.name+" joined")
	b.say(t, "still here?")
	a.expect(t, "["+b.name+"] still here?")
	assert.NotContains(t, srv.out.String(), "too slow")
	close(done)
	wg.Wait()
}

func TestConnectCloseStormPushesOutNoMemberWhoReads(t *testing.T) {
	srv := startServer(t, "-max-conns-per-ip", "0")
	a := join(t, srv.addr)
	b := join(t, srv.addr)
	a.expect(t, "* "+b.name+" joined")
	// a reads whatever comes, in the background, until it hears b.
	heard := make(chan error, 1)
	go func() { heard <- readUntil(a, "["+b.name+"] after the storm") }()

	// 8 clients connect and close as fast as they can, 100 times
	// each: a join and a departure to announce each time.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				conn, err := net.DialTimeout("tcp", srv.addr, wait)
				if err != nil {
					t.Error(err)
					return
				}
				conn.Close()
			}
		}()
	}
	wg.Wait()
	b.say(t, "after the storm")
	require.NoError(t, receive(t, heard), "a must still be a member and hear b; the log:\n%s", srv.out.String())
	assert.NotContains(t, srv.out.String(), "too slow")
}

func TestTalkerSending200LongLinesAtOncePushesOutNoMemberWhoReads(t *testing.T) {
	srv := startServer(t)
	talker := join(t, srv.addr)
	b := join(t, srv.addr)
	c := join(t, srv.addr)
	talker.expect(t, "* "+b.name+" joined")
	talker.expect(t, "* "+c.name+" joined")
	b.expect(t, "* "+c.name+" joined")

	// 200 lines of 1 KB, all in one write.
	var all strings.Builder
	for i := range 200 {
		fmt.Fprintf(&all, "%03d %s\n", i, strings.Repeat("x", 1020))
	}
	talker.send(t, all.String())
	for _, m := range []*member{b, c} {
		for i := range 200 {
			m.expect(t, fmt.Sprintf("[%s] %03d %s", talker.name, i, strings.Repeat("x", 1020)))
		}
	}
	assert.NotContains(t, srv.out.String(), "too slow")
}

func TestOutboxJudgesSlownessOverTimeNotAtOneInstant(t *testing.T) {
	clock := time.Unix(0, 0)
	o := &outbox{limit: 1000, slowAfter: 10 * time.Second, ready: make(chan struct{}, 1), now: func() time.Time { return clock }}

	// A burst: 200 lines at one instant, none written yet. Nobody is
	// slow for being a moment late.
	for i := range 200 {
		require.True(t, o.put("abc\n"), "line %d of a burst", i)
	}
	clock = clock.Add(9 * time.Second)
	require.True(t, o.put("abc\n"), "behind for 9s, under -slow-after")

	// The connection takes everything: the clock starts again with
	// the next line that waits.
	batch := o.take(nil)
	o.wrote(len(batch), nil)
	require.True(t, o.put("abc\n"))
	clock = clock.Add(9 * time.Second)
	require.True(t, o.put("abc\n"), "9s since bytes wait again")

	// No progress for longer than -slow-after while bytes wait.
	clock = clock.Add(2 * time.Second)
	assert.False(t, o.put("abc\n"), "11s without the connection taking a byte: too slow")

	// However quick, more than the limit waiting is too slow too.
	fresh := &outbox{limit: 1000, slowAfter: time.Hour, ready: make(chan struct{}, 1), now: time.Now}
	require.True(t, fresh.put(strings.Repeat("x", 1000)))
	assert.False(t, fresh.put("x"), "over -outbox bytes")
}

// ---- idle members, and the caps on connections ----

func TestSilentMemberIsToldAndClosedAfterIdleTimeout(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "300ms")
	a := join(t, srv.addr)
	a.expect(t, "* idle for 300ms, closing")
	a.expectEOF(t)
}

func TestMemberTricklingBytesWithoutEndingALineIsClosedAfterIdleTimeout(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "300ms")
	a := join(t, srv.addr)
	// One byte every 20 ms: any one byte would restart a timer that
	// counts silence; a line is never completed.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				a.SetWriteDeadline(time.Now().Add(wait))
				if _, err := a.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	a.expect(t, "* idle for 300ms, closing")
}

func TestClientsBeyondMaxConnsWaitForASeat(t *testing.T) {
	srv := startServer(t, "-max-conns", "2")
	a := join(t, srv.addr)
	b := join(t, srv.addr)
	a.expect(t, "* "+b.name+" joined")

	// The third waits in the backlog: no welcome yet. A short read
	// deadline shows it (nothing can prove a welcome never comes).
	conn, err := net.DialTimeout("tcp", srv.addr, wait)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(150*time.Millisecond)))
	_, err = conn.Read(make([]byte, 1))
	require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "no welcome while the room is full, got %v", err)

	// A seat frees up: the third is welcomed.
	require.NoError(t, b.Close())
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	line, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "* welcome, you are "+conn.LocalAddr().String()+"\n", line)
}

func TestOneAddressCannotTakeEverySeat(t *testing.T) {
	srv := startServer(t, "-max-conns", "3", "-max-conns-per-ip", "2")
	a := join(t, srv.addr)
	b := join(t, srv.addr)
	a.expect(t, "* "+b.name+" joined")

	// A third from the same address is told why, and closed with FIN.
	conn, err := net.DialTimeout("tcp", srv.addr, wait)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	got, err := io.ReadAll(conn)
	require.NoError(t, err, "want a clean end of stream (FIN), not a reset")
	assert.Equal(t, "bye: too many connections from your address (limit 2), closing\n", string(got))
	srv.out.waitFor(t, "refused")

	// Someone from another address still gets the seat it left.
	other := joinFrom(t, srv.addr, net.IPv4(127, 0, 0, 2))
	a.expect(t, "* "+other.name+" joined")
}

func TestBadLimitFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-max-conns", "0"}, {"-max-conns-per-ip", "-1"}, {"-idle-timeout", "0s"}, {"-slow-after", "0s"},
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		assert.ErrorIs(t, err, errUsage, "%v", args)
	}
}

// ---- accept failures ----

func TestRoomKeepsAcceptingWhileOutOfFileDescriptors(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	fake := &failingListener{TCPListener: ln, errno: syscall.EMFILE, fails: 3}
	srv := startRoom(t, fake)

	// The client waits in the backlog through three failures, then is
	// welcomed: the room backed off and tried again.
	join(t, srv.addr)
	assert.Contains(t, srv.out.waitFor(t, "accept failed"), "docs/errors.md#emfile")
	srv.out.waitFor(t, "accepting again after 3 failed attempts")
	srv.stop()
	require.NoError(t, srv.wait(t), "a shutdown is not an error")
}

func TestRoomWhoseListenerBreaksEndsWithAnError(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	srv := startRoom(t, ln)
	a := join(t, srv.addr)
	ln.Close() // under the room, not by Ctrl+C
	a.expect(t, "* server shutting down")
	// main turns the error into exit status 1, so that a supervisor
	// restarts the room; nil would exit 0.
	assert.Error(t, srv.wait(t))
}

// ---- helpers for these tests ----

// readEverything joins the room and reads all it is sent, until done
// is closed.
func readEverything(t *testing.T, addr string, done chan struct{}) {
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(chanContext(done), func() { conn.Close() })
	defer stop()
	conn.SetReadDeadline(time.Now().Add(2 * wait))
	io.Copy(io.Discard, conn)
}

// chanContext is a context that is done when done is closed.
func chanContext(done chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-done
		cancel()
	}()
	return ctx
}

// readUntil reads m's lines until one equals want.
func readUntil(m *member, want string) error {
	m.SetReadDeadline(time.Now().Add(2 * wait))
	for {
		line, err := m.r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("%s: before %q came: %w", m.name, want, err)
		}
		if strings.TrimSuffix(line, "\n") == want {
			return nil
		}
	}
}

// joinFrom joins from the local address ip, skipping the test where
// that address cannot be used (macOS has only 127.0.0.1 by default).
func joinFrom(t *testing.T, addr string, ip net.IP) *member {
	t.Helper()
	d := net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: ip}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %v on this system: %v", ip, err)
	}
	t.Cleanup(func() { conn.Close() })
	m := &member{Conn: conn, r: bufio.NewReader(conn), name: conn.LocalAddr().String()}
	m.expect(t, "* welcome, you are "+m.name)
	return m
}

// receive waits for one value from ch.
func receive[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(2 * wait):
		t.Fatal("nothing received in time")
		var zero T
		return zero
	}
}

// startRoom runs the room on ln, as serve does after listening.
func startRoom(t *testing.T, ln tcpListener) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &testServer{out: newLines(), stop: cancel, done: make(chan error, 1), addr: ln.Addr().String()}
	r := &room{
		log: log.New(srv.out, "", 0), maxLine: 1024, outboxSize: 64, slowAfter: wait, idle: time.Minute,
		maxConns: 10, perIP: &addrCounts{n: map[netip.Addr]int{}},
		joins: make(chan *client), messages: make(chan message), leaves: make(chan departure),
	}
	go func() { srv.done <- r.serveOn(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(2 * wait):
			t.Error("room did not stop after cancel")
		}
	})
	srv.out.waitFor(t, "listening on")
	return srv
}

// failingListener fails its first Accepts with errno, the way a kernel
// out of descriptors does, then accepts for real.
type failingListener struct {
	*net.TCPListener
	errno syscall.Errno
	mu    sync.Mutex
	fails int
}

func (l *failingListener) AcceptTCP() (*net.TCPConn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept", l.errno)}
	}
	l.mu.Unlock()
	return l.TCPListener.AcceptTCP()
}
