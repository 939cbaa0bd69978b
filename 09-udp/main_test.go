package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/netip"
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

func TestEveryRequestIsAnsweredWhateverItsLength(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	// A request is an empty datagram, as the article's client sends, or
	// zero bytes of any length but 4 (the client's -size).
	for _, size := range []int{0, 1, 3, 5, 1000} {
		assert.Equal(t, encode(demoTime, false), exchange(t, srv.addr, make([]byte, size)), "%d zero bytes", size)
	}
}

// ---- the loop: a server that answers replies answers them forever ----

func TestServerNeverAnswersADatagramFromItsOwnAddress(t *testing.T) {
	canForge(t)
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	// An attacker forges one datagram with the server's own address as
	// its source. A server that answers it sends its answer to itself,
	// answers that, and so on, as fast as loopback goes.
	sendFromServersSocket(t, srv.addr, nil, srv.addr)
	// A real client's request queues behind the forged one: once it is
	// answered, the forged one has been read.
	assert.Len(t, exchange(t, srv.addr, nil), 4)
	srv.during(t, loopWindow)

	assert.Equal(t, 1, srv.answered(t), "only the real client is answered:\n%s", srv.out.String())
	assert.Contains(t, srv.out.String(), "sent 0 bytes; ignored: it comes from this server's own address\n")
}

func TestTwoServersForgedAtEachOtherAnswerOnceNotForever(t *testing.T) {
	canForge(t)
	a := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	b := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	// One request forged from a to b: b answers a, and a must not
	// answer b's answer, or the two play ping-pong until restarted.
	sendFromServersSocket(t, a.addr, nil, b.addr)
	// Each server's real client queues behind what reached it first.
	assert.Len(t, exchange(t, b.addr, nil), 4)
	assert.Len(t, exchange(t, a.addr, nil), 4)
	a.during(t, loopWindow)

	assert.Equal(t, 2, b.answered(t), "b answers the forged request and its real client")
	assert.Equal(t, 1, a.answered(t), "a answers only its real client, never b's reply:\n%s", a.out.String())
	assert.Contains(t, a.out.String(), "sent 4 bytes; ignored: not a request (a request is empty, or zero bytes but never 4)\n")
}

func TestReplyIsNeverTakenForARequest(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	conn := dialUDP(t, srv.addr)
	// A reply is 4 bytes; and what other services answer with (text,
	// any bytes that are not all zero) is not a request either.
	for _, datagram := range [][]byte{
		encode(demoTime, false),
		{0, 0, 0, 0}, // the reply at 1970-01-01 and at the 2036 wrap
		[]byte("what time is it?"),
		bytes.Repeat([]byte{0xff}, 1000),
	} {
		_, err := conn.Write(datagram)
		require.NoError(t, err)
		noReply(t, conn, 50*time.Millisecond)
		assert.Contains(t, srv.out.next(t), "; ignored: not a request")
	}
	assert.Equal(t, 0, srv.answered(t))
}

func TestRFC868AnswersOnlyAnEmptyDatagram(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0", "-rfc868")
	conn := dialUDP(t, srv.addr)
	// The article's client and rdate send an empty datagram and get
	// exactly 4 bytes back.
	assert.Equal(t, encode(demoTime, true), exchange(t, srv.addr, nil))
	for _, datagram := range [][]byte{{0}, encode(demoTime, true), []byte("time?")} {
		_, err := conn.Write(datagram)
		require.NoError(t, err)
		noReply(t, conn, 50*time.Millisecond)
		assert.Contains(t, srv.out.waitFor(t, "ignored"), "ignored: not a request (RFC 868 asks with an empty datagram)")
	}
	assert.Equal(t, 1, srv.answered(t))
}

func TestDatagramFromAPrivilegedPortIsNotAnswered(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	// Below 1024 live services such as echo and chargen, which answer
	// whatever arrives: a request forged from one would start a loop
	// with it. This socket plays such a service.
	service := privilegedSocket(t)
	to, err := net.ResolveUDPAddr("udp", srv.addr)
	require.NoError(t, err)
	_, err = service.WriteTo(nil, to)
	require.NoError(t, err)
	require.NoError(t, service.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, _, err = service.ReadFrom(make([]byte, maxDatagram))
	assert.True(t, isTimeout(err), "want no reply, got %v", err)

	port := portOf(t, service.LocalAddr().String())
	assert.Contains(t, srv.out.next(t), "sent 0 bytes; ignored: it comes from port "+port+", below 1024")
	assert.Equal(t, 0, srv.answered(t))
}

func TestServerOnEveryAddressKnowsItsOwnAddresses(t *testing.T) {
	self := netip.MustParseAddrPort("0.0.0.0:9009")
	mine := []netip.Addr{netip.MustParseAddr("192.0.2.7")}
	for from, own := range map[string]bool{
		"127.0.0.1:9009":          true,  // loopback, our port
		"127.0.0.2:9009":          true,  // all of 127/8 is loopback
		"192.0.2.7:9009":          true,  // an address of this machine
		"[::ffff:192.0.2.7]:9009": true,  // the same, as IPv6 sees it
		"192.0.2.8:9009":          false, // another machine's server
		"127.0.0.1:9010":          false, // another port
	} {
		assert.Equal(t, own, isOwnAddress(netip.MustParseAddrPort(from), self, mine), from)
	}
	// Bound to one address, only that address and port are ours.
	one := netip.MustParseAddrPort("127.0.0.1:9009")
	assert.True(t, isOwnAddress(netip.MustParseAddrPort("127.0.0.1:9009"), one, nil))
	assert.False(t, isOwnAddress(netip.MustParseAddrPort("127.0.0.2:9009"), one, nil))
}

// ---- the log: it never stops the server, and a flood cannot fill it ----

func TestFloodIsLoggedInFewerBytesThanItsDatagrams(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	conn := dialUDP(t, srv.addr)
	// 1,000 empty requests in lock-step, each answered. On the wire
	// each is 28 bytes (20 of IP header, 8 of UDP header).
	const datagrams = 1000
	reply := make([]byte, maxDatagram)
	for i := 0; i < datagrams; i++ {
		_, err := conn.Write(nil)
		require.NoError(t, err)
		n, err := conn.Read(reply)
		require.NoError(t, err)
		require.Equal(t, 4, n)
	}
	require.Equal(t, datagrams, srv.answered(t))

	log := srv.out.String()
	logged := strings.Count(log, " sent 0 bytes; answered ")
	skipped := 0
	for _, m := range regexp.MustCompile(`log: (\d+) lines skipped \(at most 10 a second\)`).FindAllStringSubmatch(log, -1) {
		n, _ := strconv.Atoi(m[1])
		skipped += n
	}
	t.Logf("%d datagrams: %d lines logged, %d skipped, %d bytes of log", datagrams, logged, skipped, len(log))
	assert.Equal(t, datagrams, logged+skipped, "every datagram is logged or counted")
	assert.Less(t, len(log), datagrams*28, "the log costs less than the datagrams that caused it")
}

func TestStdoutNobodyReadsNeverStopsTheServer(t *testing.T) {
	stdout := newStuckWriter()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runWithClock(ctx, fixed(demoTime), []string{"-addr", "127.0.0.1:0"}, stdout, io.Discard)
	}()
	addr, ok := strings.CutPrefix(stdout.firstLine(t), "listening on ")
	require.True(t, ok)

	// From here on every write to stdout blocks, as to a pipe whose
	// reader has paused. 50 clients are still answered.
	for i := 0; i < 50; i++ {
		assert.Len(t, exchange(t, addr, nil), 4, "client %d", i+1)
	}
	// And Ctrl+C still stops the server, within the time it gives its
	// log to drain.
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(flushLimit + wait):
		t.Fatal("the server did not stop while its stdout was stuck")
	}
	t.Logf("stopped in %v", time.Since(start))

	// When the reader comes back, the lines that were queued follow.
	stdout.release()
	assert.Contains(t, stdout.waitFor(t, "stopped; "), "stopped; datagrams answered: 50")
}

func TestLogQueueCountsTheLinesNobodyReadsAndSaysSoWhenTheLogMoves(t *testing.T) {
	stdout := newStuckWriter()
	q := newLogQueue(stdout, 4)
	q.Write([]byte("first\n")) // goes through; then the writer is stuck
	stdout.firstLine(t)
	q.Write([]byte("1\n"))
	stdout.waitBlocked(t) // the queue's goroutine is stuck writing "1"
	// The queue holds 4 lines; the other 5 are dropped, and Write
	// returns at once every time.
	for i := 2; i <= 10; i++ {
		q.Write([]byte(strconv.Itoa(i) + "\n"))
	}
	stdout.release()
	assert.True(t, q.Close(wait), "everything queued was written")
	assert.Equal(t, "1\nlog: 5 lines dropped while the log was not being read\n2\n3\n4\n5\n", stdout.rest())
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
	ours := regexp.MustCompile(`09-udp\.(serve|runClient|runWithClock|pause|\(\*logQueue\)\.run)\(`)
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
	assert.True(t, isErrno(err, syscall.EADDRINUSE), "want EADDRINUSE, got %v", err)
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

func TestAddressWithoutAPortGetsAHint(t *testing.T) {
	for args, want := range map[string]string{
		"-addr 9009":              "listen on 9009: address 9009: missing port in address (write host:port, e.g. 127.0.0.1:9009 or :9009)",
		"-client -addr 127.0.0.1": "resolve 127.0.0.1: address 127.0.0.1: missing port in address (write host:port, e.g. 127.0.0.1:9009 or :9009)",
	} {
		err := run(context.Background(), strings.Fields(args), nil, io.Discard, io.Discard)
		require.Error(t, err, args)
		assert.Equal(t, want, explain(err), args)
	}
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

func TestMemoryStaysFixedWhileClientsSendTheLargestDatagrams(t *testing.T) {
	srv := startServer(t, fixed(demoTime), "-addr", "127.0.0.1:0")
	conn := dialUDP(t, srv.addr)
	const datagrams = 500
	request := make([]byte, 65507) // zero bytes: a request
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
