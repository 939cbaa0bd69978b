// Lesson 09-udp: a time server and its client over UDP.
//
// UDP has no connections. There is no Listen/Accept pair and no stream:
// one socket receives datagrams from anybody with ReadFrom, which also
// says who sent each one, and answers with WriteTo. Every datagram
// arrives whole or not at all. The server answers each request with
// 4 bytes: the current time as seconds, in network byte order, and
// never answers anything that could be a reply. The client (client.go)
// sends an empty datagram and, because a lost datagram simply never
// arrives, waits with a deadline and tries again a few times.
//
// With -rfc868 the seconds count from 1900, as RFC 868 (the "Time
// Protocol") defines them, so the real rdate client can read them.
//
// Here: the wire format and the server. Elsewhere: main and the flags
// (cli.go), -client (client.go), errors.go, the log (logqueue.go).
//
// Run it:
//
//	go run ./09-udp                        # server, on 127.0.0.1:9009
//	go run ./09-udp -client                # in a second terminal
//	go run ./09-udp -rfc868                # server for rdate:
//	rdate -p -u -o 9009 127.0.0.1          #   -u means UDP, -p print only
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"
)

// ---- the wire format ----

// The time travels as a 32-bit count of seconds since an epoch. The
// articles' server counts from 1970 (Unix time); RFC 868 counts from
// the first of January 1900.
var (
	unixEpoch   = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	rfc868Epoch = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
)

func epoch(rfc868 bool) time.Time {
	if rfc868 {
		return rfc868Epoch
	}
	return unixEpoch
}

// encode turns t into the 4 bytes on the wire: whole seconds since the
// epoch, most significant byte first ("network byte order", Python's
// struct.pack("!I", secs)). Thirty-two bits run out: the RFC 868 count
// passes 2^32-1 on 2036-02-07 at 06:28:15 UTC, the Unix count in 2106.
// Converting to uint32 keeps the low 32 bits, so the count wraps to 0
// and goes on, which is what every RFC 868 server does.
func encode(t time.Time, rfc868 bool) []byte {
	secs := t.Unix() - epoch(rfc868).Unix()
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(secs))
	return b
}

// errNotFourBytes says a reply was not a time: this protocol's answer
// is always exactly 4 bytes.
var errNotFourBytes = errors.New("a time reply is exactly 4 bytes")

// decode turns a reply back into a time. Because the count wraps, one
// 32-bit value stands for many moments 2^32 seconds (about 136 years)
// apart; decode picks the one nearest ref, the client's own clock. It
// takes the difference between the value and ref's count as a signed
// 32-bit number, so it is right whenever the two clocks are less than
// 68 years apart, on either side of a wrap.
func decode(b []byte, rfc868 bool, ref time.Time) (time.Time, error) {
	if len(b) != 4 {
		return time.Time{}, fmt.Errorf("%w, got %d", errNotFourBytes, len(b))
	}
	value := binary.BigEndian.Uint32(b)
	refCount := uint32(ref.Unix() - epoch(rfc868).Unix())
	delta := int32(value - refCount)
	return time.Unix(ref.Unix()+int64(delta), 0).UTC(), nil
}

// ---- the server ----

// maxDatagram is larger than any UDP datagram can be (65,507 bytes of
// payload over IPv4, 65,527 over IPv6), so a read never cuts one short.
// It is the server's only buffer: memory stays the same whatever and
// however much arrives.
const maxDatagram = 64 * 1024

// serve answers every request that reaches addr until ctx is done.
//
// RFC 868: "When a datagram arrives, the server returns a datagram
// containing the 32-bit time value." Taken literally, that answers
// replies too: a datagram forged to come from the server's own address
// makes it answer itself, and its answer is a datagram that arrives,
// so it answers that, forever. Two servers forged at each other do the
// same. So the server answers only what no reply can ever be (see
// refuse), and each datagram is either answered once or ignored.
func serve(ctx context.Context, addr string, rfc868 bool, now func() time.Time, stdout io.Writer) error {
	// ListenPacket creates a datagram socket and binds it. There is no
	// listen step and no backlog: datagrams queue in the socket's
	// receive buffer, and when that is full the kernel drops new ones.
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer conn.Close()
	fmt.Fprintf(stdout, "listening on %s\n", conn.LocalAddr())
	self := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	mine := machineAddrs()

	// ReadFrom blocks until a datagram arrives. Closing the socket is
	// the way to wake it, so a stopped context closes it.
	stopRead := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopRead()

	// A flood must not become a flood of log lines: at most logLimit a
	// second, and the rest are counted.
	log := &limitedLog{w: stdout}
	buf := make([]byte, maxDatagram)
	answered := 0
	failures := 0
	for {
		// One ReadFrom returns one whole datagram and its sender. Two
		// datagrams are never merged, nor one split, unlike TCP reads.
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				log.flush()
				fmt.Fprintf(stdout, "stopped; datagrams answered: %d\n", answered)
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("read: %w", err)
			}
			// No error about one datagram may stop the server. Log it,
			// and pause a little longer after each one in a row, so a
			// lasting fault cannot spin the loop (nor the log: these
			// lines are paced by the pause, not by the limit).
			failures++
			fmt.Fprintf(stdout, "read failed, going on: %v\n", err)
			pause(ctx, failures)
			continue
		}
		failures = 0

		if why := refuse(buf[:n], from.(*net.UDPAddr).AddrPort(), self, mine, rfc868); why != "" {
			log.printf("%s sent %d bytes; ignored: %s\n", from, n, why)
			continue
		}
		t := now()
		reply := encode(t, rfc868)
		// A UDP send blocks only while the socket's send buffer is
		// full; the deadline keeps even that short.
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := conn.WriteTo(reply, from); err != nil {
			log.printf("%s sent %d bytes; reply failed: %v\n", from, n, err)
			continue
		}
		answered++
		log.printf("%s sent %d bytes; answered 0x%08x = %s\n",
			from, n, binary.BigEndian.Uint32(reply), t.UTC().Format(time.RFC3339))
	}
}

// isRequest reports whether a datagram asks for the time. A reply is
// always 4 bytes, so 4 bytes are never a request, whatever they hold:
// then no reply, ours or another server's, is ever answered. With
// RFC 868 only an empty datagram asks, as rdate and the article's
// client send. The lesson's own protocol also takes zero bytes of any
// other length (the client's -size), and nothing else, so that the text
// another service answers with is not taken for a request either.
func isRequest(datagram []byte, rfc868 bool) bool {
	if rfc868 || len(datagram) == 4 {
		return len(datagram) == 0
	}
	for _, b := range datagram {
		if b != 0 {
			return false
		}
	}
	return true
}

// refuse says why a datagram from `from` must not be answered, or ""
// when it is a request to answer. UDP's source address is not checked,
// so anybody can forge it; these rules keep a forged one from starting
// a loop.
func refuse(datagram []byte, from, self netip.AddrPort, mine []netip.Addr, rfc868 bool) string {
	switch {
	case isOwnAddress(from, self, mine):
		// The answer would come straight back to this socket.
		return "it comes from this server's own address"
	case from.Port() < 1024:
		// Below 1024 live services such as echo (7) and chargen (19)
		// that answer whatever arrives: never start a conversation
		// with them.
		return fmt.Sprintf("it comes from port %d, below 1024", from.Port())
	case !isRequest(datagram, rfc868):
		if rfc868 {
			return "not a request (RFC 868 asks with an empty datagram)"
		}
		return "not a request (a request is empty, or zero bytes but never 4)"
	}
	return ""
}

// isOwnAddress reports whether from is the server's own socket: its
// port, and its IP address or, for a server bound to every address
// (0.0.0.0 or ::), loopback or any address of this machine.
func isOwnAddress(from, self netip.AddrPort, mine []netip.Addr) bool {
	if from.Port() != self.Port() {
		return false
	}
	ip, own := from.Addr().Unmap().WithZone(""), self.Addr().Unmap().WithZone("")
	if ip == own {
		return true
	}
	return own.IsUnspecified() && (ip.IsLoopback() || slices.Contains(mine, ip))
}

// machineAddrs lists the IP addresses of this machine's interfaces.
func machineAddrs() []netip.Addr {
	var mine []netip.Addr
	addrs, _ := net.InterfaceAddrs() // none known: loopback still counts
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			mine = append(mine, p.Addr().Unmap().WithZone(""))
		}
	}
	return mine
}

// pause waits 10ms, doubled for each failure in a row up to a second,
// or until ctx is done.
func pause(ctx context.Context, failures int) {
	d := 10 * time.Millisecond << min(failures-1, 7)
	timer := time.NewTimer(min(d, time.Second))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}
