package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step of a test, so a broken server fails the
// test instead of hanging it.
const wait = 5 * time.Second

// demoTime is the clock the README's sessions were recorded with.
var demoTime = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// The second the RFC 868 count wraps: 2036-02-07T06:28:16Z is 2^32
// seconds after 1900-01-01T00:00:00Z.
var (
	lastBeforeWrap = time.Date(2036, 2, 7, 6, 28, 15, 0, time.UTC)
	firstAfterWrap = time.Date(2036, 2, 7, 6, 28, 16, 0, time.UTC)
)

func TestPrintsTheAddressItReallyListensOn(t *testing.T) {
	srv := startServer(t, time.Now, "-addr", "127.0.0.1:0")
	// Port 0 asks the kernel for any free port; the program must print
	// the one it got, or nobody could send to it.
	assert.NotEqual(t, "0", portOf(t, srv.addr))
	reply := exchange(t, srv.addr, nil)
	assert.Len(t, reply, 4)
}

func TestEmptyDatagramGetsTheTimeAsFourBytesInNetworkByteOrder(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	// 2025-03-14T15:09:26Z is 1741964966 seconds after 1970, which is
	// 0x67d446a6: the most significant byte goes first.
	assert.Equal(t, []byte{0x67, 0xd4, 0x46, 0xa6}, exchange(t, srv.addr, nil))
}

func TestClientPrintsTheServersTime(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	out, errOut, err := ask(t, time.Now, "-client", "-addr", srv.addr)
	require.NoError(t, err)
	assert.Equal(t, "2025-03-14T15:09:26Z\n", out)
	assert.Empty(t, errOut, "no retry was needed")
}

func TestEveryDatagramIsAnsweredWhateverItContains(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	// RFC 868 ignores the request's content, and so does the server.
	for _, request := range [][]byte{
		[]byte("what time is it?"),
		bytes.Repeat([]byte{0xff}, 1000),
		{0},
	} {
		assert.Equal(t, encode(demoTime, false), exchange(t, srv.addr, request))
	}
}

func TestDatagramsKeepTheirBoundaries(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	conn := dialUDP(t, srv.addr)

	// Three datagrams sent back to back, before reading anything...
	for _, size := range []int{1, 10, 100} {
		_, err := conn.Write(make([]byte, size))
		require.NoError(t, err)
	}
	// ...are read by the server as three, each whole: TCP would be free
	// to deliver these 111 bytes in any number of reads.
	for _, size := range []string{"1", "10", "100"} {
		assert.Contains(t, srv.out.next(t), " sent "+size+" bytes; answered ")
	}
	// The three replies, too, arrive as three reads of 4 bytes, not one
	// read of 12, however large the buffer.
	buf := make([]byte, maxDatagram)
	for i := 0; i < 3; i++ {
		n, err := conn.Read(buf)
		require.NoError(t, err)
		assert.Equal(t, 4, n)
	}
}

func TestFloodOfGarbageAndOversizedDatagramsDoesNotStopTheServer(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	flood := dialUDP(t, srv.addr)

	// 300 datagrams of every awkward size, up to the largest IPv4 allows,
	// as fast as the socket takes them, never reading the replies. The
	// kernel drops what does not fit in the server's receive buffer (UDP
	// never pushes back); the server must survive whatever does arrive.
	sizes := []int{0, 1, 3, 4, 5, 512, 1472, 9000, 65507}
	for i := 0; i < 300; i++ {
		garbage := bytes.Repeat([]byte{byte(i), 0xff, '\n', 0}, sizes[i%len(sizes)]/4+1)
		// A system may refuse the largest sizes or run short of buffers
		// for a moment (ENOBUFS); neither matters to this test.
		flood.Write(garbage[:sizes[i%len(sizes)]])
	}

	// A well-behaved client is still answered. Its retries cover the
	// chance that its datagram met a full receive buffer.
	out, _, err := ask(t, time.Now, "-client", "-addr", srv.addr, "-timeout", "100ms", "-retries", "5")
	require.NoError(t, err)
	assert.Equal(t, "2025-03-14T15:09:26Z\n", out)
	select {
	case err := <-srv.done:
		t.Fatalf("the server stopped during the flood: %v", err)
	default:
	}
	assert.NotContains(t, srv.out.String(), "read failed")
}

func TestClientRejectsAReplyThatIsNotFourBytes(t *testing.T) {
	for _, size := range []int{0, 3, 5, 1000} {
		peer := fakeServer(t, func(int) []byte { return make([]byte, size) })
		_, errOut, err := ask(t, time.Now, "-client", "-addr", peer)
		require.Error(t, err, "a %d-byte reply must not pass as a time", size)
		assert.ErrorIs(t, err, errNotFourBytes)
		assert.Contains(t, err.Error(), "got "+strconv.Itoa(size))
		assert.Contains(t, explain(err), "is that a time server")
		assert.Empty(t, errOut, "a wrong reply is not a lost one: no retry")
	}
}

func TestClientRetriesThenGivesUpAgainstASilentPeer(t *testing.T) {
	peer := silentPeer(t)
	start := time.Now()
	_, errOut, err := ask(t, time.Now, "-client", "-addr", peer.LocalAddr().String(), "-timeout", "20ms", "-retries", "3")
	elapsed := time.Since(start)

	require.Error(t, err)
	assert.True(t, isTimeout(err), "want a timeout, got %v", err)
	assert.Contains(t, err.Error(), "no reply from "+peer.LocalAddr().String()+" after 4 attempts")
	assert.Contains(t, explain(err), "(see docs/errors.md#timeout)")
	assert.Equal(t, "no reply within 20ms; sending again (attempt 2 of 4)\n"+
		"no reply within 40ms; sending again (attempt 3 of 4)\n"+
		"no reply within 80ms; sending again (attempt 4 of 4)\n", errOut)
	// One datagram plus three retries reached the peer, and the waits
	// doubled: 20+40+80+160ms.
	assert.Equal(t, 4, countDatagrams(t, peer))
	assert.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
}

func TestClientSucceedsWhenItsFirstDatagramIsLost(t *testing.T) {
	// This peer plays a lossy network: it drops the first request and
	// answers the second.
	peer := fakeServer(t, func(i int) []byte {
		if i == 1 {
			return nil
		}
		return encode(demoTime, false)
	})
	out, errOut, err := ask(t, time.Now, "-client", "-addr", peer, "-timeout", "50ms", "-retries", "2")
	require.NoError(t, err)
	assert.Equal(t, "2025-03-14T15:09:26Z\n", out)
	assert.Equal(t, "no reply within 50ms; sending again (attempt 2 of 3)\n", errOut)
}

func TestClosedPortIsReportedAsConnectionRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Go on Windows turns off the report of ICMP port unreachable on UDP sockets (go.dev/issue/5834), so there the client times out instead")
	}
	// Nothing is bound to this port. The kernel answers the datagram with
	// ICMP "port unreachable", which a dialed UDP socket reports as
	// ECONNREFUSED on its next read. Retries are allowed so that an ICMP
	// message lost to rate limiting cannot fail the test.
	addr := closedUDPPort(t)
	_, _, err := ask(t, time.Now, "-client", "-addr", addr, "-timeout", "1s", "-retries", "3")
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "want ECONNREFUSED, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#econnrefused)")
}

func TestDialingUDPSendsNothing(t *testing.T) {
	peer := silentPeer(t)
	conn, err := net.DialTimeout("udp", peer.LocalAddr().String(), wait)
	require.NoError(t, err)
	defer conn.Close()
	// Dial only chose the peer: no packet left, and it succeeded even
	// though nobody will ever answer.
	assert.Equal(t, 0, countDatagrams(t, peer))
}

func TestDialedSocketOnlyHearsFromItsPeer(t *testing.T) {
	peer := silentPeer(t)
	stranger := silentPeer(t)
	client := dialUDP(t, peer.LocalAddr().String())

	// A datagram from another address is dropped by the kernel, so the
	// client's Read never sees it. Waiting 50ms for nothing to arrive is
	// the point of this check.
	_, err := stranger.WriteTo([]byte("not from your peer"), client.LocalAddr())
	require.NoError(t, err)
	require.NoError(t, client.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err = client.Read(make([]byte, 64))
	assert.True(t, isTimeout(err), "want nothing to arrive, got %v", err)

	// The same from the peer arrives.
	_, err = peer.WriteTo([]byte("from your peer"), client.LocalAddr())
	require.NoError(t, err)
	require.NoError(t, client.SetReadDeadline(time.Now().Add(wait)))
	buf := make([]byte, 64)
	n, err := client.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "from your peer", string(buf[:n]))
}

func TestFullReceiveBufferDropsDatagramsSilently(t *testing.T) {
	peer := silentPeer(t)
	// A small receive buffer, and nobody reading from it.
	require.NoError(t, peer.(*net.UDPConn).SetReadBuffer(4096))
	sender := dialUDP(t, peer.LocalAddr().String())

	// Every send succeeds: UDP has no flow control, so the sender is
	// never told that most of these have nowhere to go.
	const sent = 100
	for i := 0; i < sent; i++ {
		_, err := sender.Write(make([]byte, 1000))
		require.NoError(t, err)
	}
	received := countDatagrams(t, peer)
	assert.Greater(t, received, 0)
	assert.Less(t, received, sent, "the kernel should have dropped what did not fit")
}

func TestRFC868TimeEitherSideOfThe2036Wrap(t *testing.T) {
	date := func(y int, m time.Month, d, hh, mm, ss int) time.Time {
		return time.Date(y, m, d, hh, mm, ss, 0, time.UTC)
	}
	for _, tc := range []struct {
		time time.Time
		wire uint32
	}{
		// The four examples RFC 868 itself gives, then the wrap.
		{date(1858, 11, 17, 0, 0, 0), 2997239296}, // the RFC's -1,297,728,000
		{date(1900, 1, 1, 0, 0, 0), 0},
		{date(1970, 1, 1, 0, 0, 0), 2208988800},
		{date(1976, 1, 1, 0, 0, 0), 2398291200},
		{date(1980, 1, 1, 0, 0, 0), 2524521600},
		{date(1983, 5, 1, 0, 0, 0), 2629584000},
		{date(2025, 3, 14, 15, 9, 26), 0xeb7ec526},
		{date(2036, 2, 7, 6, 28, 15), 0xffffffff},
		{date(2036, 2, 7, 6, 28, 16), 0x00000000},
		{date(2036, 2, 7, 6, 28, 17), 0x00000001},
		{date(2100, 1, 1, 0, 0, 0), 2016466304},
	} {
		t.Run(tc.time.Format(time.RFC3339), func(t *testing.T) {
			assert.Equal(t, wire(tc.wire), encode(tc.time, true), "encode")
			// Decoding must find the same moment whichever side of a
			// wrap the client's clock is on, up to decades away.
			for _, ref := range []time.Time{
				tc.time,
				tc.time.AddDate(-60, 0, 0),
				tc.time.AddDate(60, 0, 0),
				lastBeforeWrap,
				firstAfterWrap,
			} {
				if d := ref.Sub(tc.time); d > 68*365*24*time.Hour || d < -68*365*24*time.Hour {
					continue // beyond what 32 bits can tell apart
				}
				got, err := decode(wire(tc.wire), true, ref)
				require.NoError(t, err)
				assert.Equal(t, tc.time, got, "decode with the client's clock at %v", ref)
			}
		})
	}
}

func TestArticlesUnixCountWrapsIn2106(t *testing.T) {
	before := time.Date(2106, 2, 7, 6, 28, 15, 0, time.UTC)
	after := before.Add(time.Second)
	assert.Equal(t, wire(0xffffffff), encode(before, false))
	assert.Equal(t, wire(0), encode(after, false))
	got, err := decode(wire(0), false, before)
	require.NoError(t, err)
	assert.Equal(t, after, got)
	got, err = decode(wire(0xffffffff), false, after)
	require.NoError(t, err)
	assert.Equal(t, before, got)
}

func TestClocksMoreThan68YearsApartDecodeToTheWrongEra(t *testing.T) {
	// The limit of a 32-bit count, shown rather than hidden: with the
	// client's clock 70 years behind, the same 4 bytes are read as a
	// moment 2^32 seconds (about 136 years) before the true one.
	got, err := decode(encode(demoTime, true), true, demoTime.AddDate(-70, 0, 0))
	require.NoError(t, err)
	assert.Equal(t, demoTime.Add(-(1<<32)*time.Second), got)
}

func TestClientAndServerAgreeAcrossThe2036Wrap(t *testing.T) {
	srv := startServer(t, fixed(lastBeforeWrap), "-addr", "127.0.0.1:0", "-rfc868")
	// The client's clock is already past the wrap; the server's is not.
	out, _, err := ask(t, fixed(firstAfterWrap), "-client", "-rfc868", "-addr", srv.addr)
	require.NoError(t, err)
	assert.Equal(t, "2036-02-07T06:28:15Z\n", out)
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{}, true, demoTime.Unix())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, true, firstAfterWrap.Unix())
	f.Add([]byte{0, 0, 0, 0}, true, lastBeforeWrap.Unix())
	f.Add([]byte{0x67, 0xd4, 0x46, 0xa6}, false, demoTime.Unix())
	f.Add([]byte{1, 2, 3}, false, int64(0))
	f.Add([]byte{1, 2, 3, 4, 5}, true, int64(-1))
	f.Fuzz(func(t *testing.T, b []byte, rfc868 bool, refSecs int64) {
		// Any clock within ±34,000 years of 1970 will do.
		ref := time.Unix(refSecs%(1<<40), 0)
		got, err := decode(b, rfc868, ref)
		if len(b) != 4 {
			require.ErrorIs(t, err, errNotFourBytes)
			return
		}
		require.NoError(t, err)
		// Every 4 bytes are some time: the one nearest the reference
		// that encodes to exactly these bytes.
		assert.Equal(t, b, encode(got, rfc868))
		d := got.Sub(ref)
		assert.True(t, d >= -(1<<31)*time.Second && d < (1<<31)*time.Second, "%v is %v from the reference", got, d)
	})
}

func TestDatagramOver65507BytesFailsWithMessageTooLong(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("65,507 bytes is the limit Linux enforces; other systems may refuse smaller datagrams")
	}
	peer := silentPeer(t)
	// An IPv4 packet is at most 65,535 bytes; less 20 for the IP header
	// and 8 for the UDP header leaves 65,507 for the data.
	_, _, err := ask(t, time.Now, "-client", "-addr", peer.LocalAddr().String(), "-size", "65508")
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EMSGSIZE), "want EMSGSIZE, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#emsgsize)")
	assert.Equal(t, 0, countDatagrams(t, peer), "nothing of it was sent")
}

func TestLargestIPv4DatagramIsAnswered(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("65,507 bytes is the limit Linux enforces; other systems may refuse smaller datagrams")
	}
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	out, _, err := ask(t, time.Now, "-client", "-addr", srv.addr, "-size", "65507")
	require.NoError(t, err)
	assert.Equal(t, "2025-03-14T15:09:26Z\n", out)
	assert.Contains(t, srv.out.next(t), " sent 65507 bytes; ")
}

func TestRdateReadsTheTimeEitherSideOfThe2036Wrap(t *testing.T) {
	rdate := lookTool(t, "rdate")
	for _, at := range []time.Time{demoTime, lastBeforeWrap, firstAfterWrap} {
		srv := startServer(t, fixed(at), "-addr", "127.0.0.1:0", "-rfc868")
		out, err := runRdate(t, rdate, "-p", "-u", "-o", portOf(t, srv.addr), "127.0.0.1")
		require.NoError(t, err, "rdate said: %s", out)
		// rdate prints the time as C's ctime does, in the local time
		// zone, which runRdate sets to UTC.
		assert.Equal(t, at.Format(time.UnixDate)+"\n", out)
	}
}

func TestRdateWithoutDashUAsksOverTCPAndIsRefused(t *testing.T) {
	rdate := lookTool(t, "rdate")
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0", "-rfc868")
	// RFC 868 runs over TCP and UDP, and rdate uses TCP unless told -u.
	// Nothing listens on this port over TCP, so the kernel refuses.
	ln, err := net.Listen("tcp", srv.addr)
	if err == nil {
		ln.Close() // the TCP port was free: now it is known to be closed
	} else {
		t.Skipf("the TCP port of the same number is in use by another program: %v", err)
	}
	out, err := runRdate(t, rdate, "-p", "-o", portOf(t, srv.addr), "127.0.0.1")
	require.Error(t, err)
	assert.Equal(t, "rdate: Could not connect socket: Connection refused\n", out)
}

func TestRdateMisreadsTheArticlesEpochByDecades(t *testing.T) {
	rdate := lookTool(t, "rdate")
	// Without -rfc868 the server counts from 1970; rdate counts from
	// 1900 and lands decades away from the true time.
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	out, err := runRdate(t, rdate, "-p", "-u", "-o", portOf(t, srv.addr), "127.0.0.1")
	require.NoError(t, err, "rdate said: %s", out)
	got, err := time.Parse(time.UnixDate, strings.TrimSpace(out))
	require.NoError(t, err)
	years := got.Year() - demoTime.Year()
	assert.True(t, years > 50 || years < -50, "rdate read %v", got)
}

func TestStopExitsCleanly(t *testing.T) {
	srv := startServer(t, time.Now, "-addr", "127.0.0.1:0")
	srv.stop() // what Ctrl+C does
	require.NoError(t, srv.wait(t))
	assert.Contains(t, srv.out.String(), "stopped; datagrams answered: 0\n")
}

func TestStopWhileTheClientWaitsExitsCleanly(t *testing.T) {
	peer := silentPeer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runWithClock(ctx, time.Now, []string{"-client", "-addr", peer.LocalAddr().String(), "-timeout", "1m"}, io.Discard, io.Discard)
	}()
	// Once the request has arrived, the client is waiting in Read.
	require.NoError(t, peer.SetReadDeadline(time.Now().Add(wait)))
	_, _, err := peer.ReadFrom(make([]byte, maxDatagram))
	require.NoError(t, err)
	cancel() // what Ctrl+C does
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("the client did not stop")
	}
}

func TestNoGoroutineLeaksAfterStop(t *testing.T) {
	srv := startServer(t, time.Now, "-addr", "127.0.0.1:0")
	_, _, err := ask(t, time.Now, "-client", "-addr", srv.addr)
	require.NoError(t, err)
	_, _, err = ask(t, time.Now, "-client", "-addr", silentPeer(t).LocalAddr().String(), "-timeout", "10ms", "-retries", "0")
	require.Error(t, err)
	// The check below must be able to see the server's goroutine.
	buf := make([]byte, 1<<20)
	require.Regexp(t, `09-udp\.serve\(`, string(buf[:runtime.Stack(buf, true)]), "the running server's goroutine is not recognised")
	srv.stop()
	require.NoError(t, srv.wait(t))

	// The program's functions must all have returned: poll, because a
	// goroutine can take a moment to finish after its result was sent.
	// In a test binary, a stack names package main by its import path.
	ours := regexp.MustCompile(`09-udp\.(serve|runClient|runWithClock|pause)\(`)
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var left []string
		for _, g := range strings.Split(stacks, "\n\n") {
			if ours.MatchString(g) {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines still running the program:\n%s", strings.Join(left, "\n\n"))
		}
		runtime.Gosched()
	}
}

func TestBusyPortFailsWithAddressInUse(t *testing.T) {
	other, err := nettest.NewLocalPacketListener("udp4")
	require.NoError(t, err)
	defer other.Close()

	err = run(context.Background(), []string{"-addr", other.LocalAddr().String()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE), "want EADDRINUSE, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#eaddrinuse)")
}

func TestWorksOverIPv6(t *testing.T) {
	if !nettest.SupportsIPv6() {
		t.Skip("this machine has no IPv6 loopback")
	}
	srv := startServer(t, fixed(demoTime), "-addr", "[::1]:0")
	assert.True(t, strings.HasPrefix(srv.addr, "[::1]:"), "got %s", srv.addr)
	out, _, err := ask(t, time.Now, "-client", "-addr", srv.addr)
	require.NoError(t, err)
	assert.Equal(t, "2025-03-14T15:09:26Z\n", out)
}

func TestBadCommandLinesAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-no-such-flag"},
		{"-retries", "-1"},
		{"-timeout", "0s"},
		{"-size", "-5"},
		{"extra"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), args, nil, io.Discard, &stderr)
		assert.ErrorIs(t, err, errUsage, "%v", args)
		assert.Contains(t, stderr.String(), "-addr", "the usage is printed")
	}
}

func TestHelpIsNotAnError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, stderr.String(), "-rfc868")
}

// The README shows what a learner sees; these tests produce the same
// sessions and compare them line by line, ports aside. The clock is
// set to the moment the README shows.

func TestReadmeServerTranscript(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	_, _, err := ask(t, time.Now, "-client", "-addr", srv.addr)
	require.NoError(t, err)
	srv.out.next(t) // the request was logged
	srv.stop()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "server", srv.out.String())
}

func TestReadmeClientTranscript(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	out, errOut, err := ask(t, time.Now, "-client", "-addr", srv.addr)
	require.NoError(t, err)
	assertTranscript(t, "client", errOut+out)
}

func TestReadmeRdateTranscript(t *testing.T) {
	rdate := lookTool(t, "rdate")
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0", "-rfc868")
	out, err := runRdate(t, rdate, "-p", "-u", "-o", portOf(t, srv.addr), "127.0.0.1")
	require.NoError(t, err)
	srv.out.next(t)
	srv.stop()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "rdate", out)
	assertTranscript(t, "rfc868-server", srv.out.String())
}

func TestReadmeWrapTranscript(t *testing.T) {
	srv := startServer(t, stepping(lastBeforeWrap, firstAfterWrap), "-addr", "127.0.0.1:0", "-rfc868")
	var got strings.Builder
	// Each client's clock is on the other side of the wrap from the
	// server's, which is the hard case for decoding.
	for _, ref := range []time.Time{firstAfterWrap, lastBeforeWrap} {
		out, _, err := ask(t, fixed(ref), "-client", "-rfc868", "-addr", srv.addr)
		require.NoError(t, err)
		got.WriteString(out)
	}
	assertTranscript(t, "wrap-client", got.String())
	srv.out.next(t)
	srv.out.next(t)
	srv.stop()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "wrap-server", srv.out.String())
}

func TestReadmeSilentPeerTranscript(t *testing.T) {
	peer := silentPeer(t)
	_, errOut, err := ask(t, time.Now, "-client", "-addr", peer.LocalAddr().String(), "-timeout", "50ms", "-retries", "2")
	require.Error(t, err)
	assertTranscript(t, "silent", errOut+"error: "+explain(err)+"\n")
}

func TestReadmeMessageTooLongTranscript(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the transcript shows Linux's error text and limit")
	}
	peer := silentPeer(t)
	_, _, err := ask(t, time.Now, "-client", "-addr", peer.LocalAddr().String(), "-size", "65508")
	require.Error(t, err)
	assertTranscript(t, "emsgsize", "error: "+explain(err)+"\n")
}

func TestReadmeWrongLengthTranscript(t *testing.T) {
	peer := fakeServer(t, func(int) []byte { return []byte("hello") })
	_, _, err := ask(t, time.Now, "-client", "-addr", peer)
	require.Error(t, err)
	assertTranscript(t, "wrong-length", "error: "+explain(err)+"\n")
}

// ---- helpers ----

// fixed is a clock stopped at t.
func fixed(t time.Time) func() time.Time {
	return func() time.Time { return t }
}

// stepping is a clock that shows each of times in turn, then stays on
// the last one.
func stepping(times ...time.Time) func() time.Time {
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := times[0]
		if len(times) > 1 {
			times = times[1:]
		}
		return t
	}
}

func wire(v uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, v)
}

// server is the program running in this test process, as `go run` would
// run it, with its output captured line by line.
type server struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program with the clock now and args, and waits
// for it to print the address it listens on.
func startServer(t *testing.T, now func() time.Time, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLines(), stop: cancel, done: make(chan error, 1)}
	go func() { srv.done <- runWithClock(ctx, now, args, srv.out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(wait):
			t.Error("server did not stop after cancel")
		}
	})
	first := srv.out.next(t)
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	srv.addr = addr
	return srv
}

// wait returns the program's result, failing the test if it runs on.
func (s *server) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // let Cleanup see it too
		return err
	case <-time.After(wait):
		t.Fatal("server did not return")
		return nil
	}
}

// ask runs the program (usually with -client) and returns what it
// printed on stdout and stderr.
func ask(t *testing.T, now func() time.Time, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var out, errOut bytes.Buffer
	err = runWithClock(ctx, now, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// exchange sends one datagram to addr and returns the reply.
func exchange(t *testing.T, addr string, request []byte) []byte {
	t.Helper()
	conn := dialUDP(t, addr)
	_, err := conn.Write(request)
	require.NoError(t, err)
	buf := make([]byte, maxDatagram)
	n, err := conn.Read(buf)
	require.NoError(t, err)
	return buf[:n]
}

func dialUDP(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("udp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// silentPeer is a UDP socket that receives and never answers, as a
// server behind a lossy network looks to a client.
func silentPeer(t *testing.T) net.PacketConn {
	t.Helper()
	conn, err := nettest.NewLocalPacketListener("udp4")
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// countDatagrams reads what has queued up at peer. Every datagram sent
// before this call is already there (loopback delivers at once), so a
// short wait that sees nothing more means there is nothing more.
func countDatagrams(t *testing.T, peer net.PacketConn) int {
	t.Helper()
	buf := make([]byte, maxDatagram)
	count := 0
	for {
		require.NoError(t, peer.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
		_, _, err := peer.ReadFrom(buf)
		if isTimeout(err) {
			return count
		}
		require.NoError(t, err)
		count++
	}
}

// fakeServer answers the i-th datagram (from 1) with reply(i), or not at
// all when that is nil. It returns its address.
func fakeServer(t *testing.T, reply func(i int) []byte) string {
	t.Helper()
	conn := silentPeer(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxDatagram)
		for i := 1; ; i++ {
			_, from, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed by Cleanup
			}
			if r := reply(i); r != nil {
				conn.WriteTo(r, from)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return conn.LocalAddr().String()
}

// closedUDPPort returns an address where no UDP socket is bound: a port
// that was just free and has been closed again.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	conn, err := nettest.NewLocalPacketListener("udp4")
	require.NoError(t, err)
	addr := conn.LocalAddr().String()
	require.NoError(t, conn.Close())
	return addr
}

// runRdate runs the real rdate with a time limit (rdate -u waits
// forever for a reply that never comes) and the time zone set to UTC.
func runRdate(t *testing.T, rdate string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, rdate, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lines is an io.Writer that hands each complete line to a channel, so a
// test can wait for the next line instead of sleeping.
type lines struct {
	mu   sync.Mutex
	all  strings.Builder
	part string
	ch   chan string
}

func newLines() *lines { return &lines{ch: make(chan string, 4096)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.part += string(p)
	for {
		line, rest, ok := strings.Cut(l.part, "\n")
		if !ok {
			break
		}
		l.ch <- line
		l.part = rest
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

func (l *lines) next(t *testing.T) string {
	t.Helper()
	select {
	case line := <-l.ch:
		return line
	case <-time.After(wait):
		t.Fatalf("no line printed within %v; so far:\n%s", wait, l.String())
		return ""
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}

func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (on Debian: apt-get install %s); .ci/run installs it", name, name)
	}
	return path
}

var ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]|localhost):\d+`)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring the "$ " command lines and the port
// numbers, which change from run to run.
func assertTranscript(t *testing.T, name, got string) {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	marker := "<!-- transcript: " + name + " -->"
	_, after, ok := strings.Cut(string(readme), marker)
	require.True(t, ok, "README.md has no %s", marker)
	_, block, ok := strings.Cut(after, "```console\n")
	require.True(t, ok, "no ```console block after %s", marker)
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok, "unterminated block after %s", marker)

	var want []string
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "$ ") {
			want = append(want, ports.ReplaceAllString(line, "$1:PORT"))
		}
	}
	have := strings.Split(ports.ReplaceAllString(strings.TrimSuffix(got, "\n"), "$1:PORT"), "\n")
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}

func TestMemoryStaysFixedWhileClientsSendTheLargestDatagrams(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	conn := dialUDP(t, srv.addr)
	const datagrams = 500
	request := bytes.Repeat([]byte{0xab}, 65507)
	reply := make([]byte, 16)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Lock-step, so that no datagram is dropped for want of room: each
	// of the 500 largest datagrams is read whole and answered.
	for i := 0; i < datagrams; i++ {
		_, err := conn.Write(request)
		require.NoError(t, err)
		n, err := conn.Read(reply)
		require.NoError(t, err)
		require.Equal(t, 4, n)
	}
	runtime.ReadMemStats(&after)

	// One 64 KiB buffer serves every datagram and the server keeps
	// nothing per client: what the process allocates (mostly the log
	// lines) is a small fraction of the 32 MB received.
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes while answering %d datagrams of %d bytes", allocated, datagrams, len(request))
	assert.Less(t, allocated, uint64(1<<20), "allocated %d bytes for %d datagrams", allocated, datagrams)
}
