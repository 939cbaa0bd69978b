// Lesson 09-udp: a time server and its client over UDP.
//
// UDP has no connections. There is no Listen/Accept pair and no stream:
// one socket receives datagrams from anybody with ReadFrom, which also
// says who sent each one, and answers with WriteTo. Every datagram
// arrives whole or not at all. The server answers each datagram with
// 4 bytes: the current time as seconds, in network byte order. The
// client sends an empty datagram and, because a lost datagram simply
// never arrives, waits with a deadline and tries again a few times.
//
// With -rfc868 the seconds count from 1900, as RFC 868 (the "Time
// Protocol") defines them, so the real rdate client can read them.
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
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"
)

// main only wires the process: flags come from os.Args, Ctrl+C and
// SIGTERM cancel ctx, and an error becomes one line on stderr.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		// -h printed the usage; asking for help is not a failure.
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "error:", explain(err))
		os.Exit(1)
	}
}

// errUsage marks a bad command line; the flag package already said why.
var errUsage = errors.New("bad command line")

// run is the whole program. Tests call it directly with their own
// arguments and output, and cancel ctx instead of pressing Ctrl+C.
// The program reads nothing from stdin: a request is one empty datagram.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runWithClock(ctx, time.Now, args, stdout, stderr)
}

// runWithClock is run with the clock as a parameter, so tests can set
// the time to any moment, such as the second the 32-bit count wraps.
func runWithClock(ctx context.Context, now func() time.Time, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("09-udp", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9009", "`host:port` to listen on (port 0 picks a free port), or to ask with -client")
	client := flags.Bool("client", false, "ask the server at -addr for the time and print it")
	rfc868 := flags.Bool("rfc868", false, "count seconds from 1900 as RFC 868 does (what rdate expects), not from 1970")
	timeout := flags.Duration("timeout", 500*time.Millisecond, "client: how long to wait for the first reply; each retry waits twice as long")
	retries := flags.Int("retries", 3, "client: how many times to send again when no reply comes")
	size := flags.Int("size", 0, "client: send this many zero bytes instead of an empty datagram")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", flags.Arg(0))
		flags.Usage()
		return errUsage
	}
	if *timeout <= 0 || *retries < 0 || *size < 0 {
		fmt.Fprintln(stderr, "-timeout must be positive; -retries and -size must not be negative")
		flags.Usage()
		return errUsage
	}

	if *client {
		ask := request{
			addr:    *addr,
			rfc868:  *rfc868,
			timeout: *timeout,
			retries: *retries,
			size:    *size,
		}
		return runClient(ctx, ask, now, stdout, stderr)
	}
	// The server's log goes through a queue, so a stdout nobody reads
	// costs log lines, never answers; at the end it gets flushLimit to
	// drain, so Ctrl+C stops the server even then.
	log := newLogQueue(stdout, logQueueLines)
	defer log.Close(flushLimit)
	return serve(ctx, *addr, *rfc868, now, log)
}

// flushLimit is how long a stopping server waits for its log to be
// written out.
const flushLimit = time.Second

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

// logLimit is how many lines about datagrams the log takes in one
// second.
const logLimit = 10

// limitedLog writes at most logLimit lines a second, and counts the
// rest. The first line after a second with skipped lines, and the stop,
// say how many were skipped. So a log line costs about as much as the
// datagram that caused it while datagrams trickle in (73 bytes for a
// 28-byte empty datagram), and a flood of any size costs at most
// logLimit lines a second.
type limitedLog struct {
	w       io.Writer
	second  time.Time // when the current second began
	lines   int       // lines written in it
	skipped int       // lines skipped since the last summary
}

func (l *limitedLog) printf(format string, args ...any) {
	if now := time.Now(); now.Sub(l.second) >= time.Second {
		l.flush()
		l.second, l.lines = now, 0
	}
	if l.lines == logLimit {
		l.skipped++
		return
	}
	l.lines++
	fmt.Fprintf(l.w, format, args...)
}

// flush says how many lines were skipped, if any were.
func (l *limitedLog) flush() {
	if l.skipped > 0 {
		fmt.Fprintf(l.w, "log: %d lines skipped (at most %d a second)\n", l.skipped, logLimit)
		l.skipped = 0
	}
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

// ---- the client ----

// request is what the client needs to ask for the time.
type request struct {
	addr    string
	rfc868  bool
	timeout time.Duration // wait for the first attempt
	retries int           // attempts after the first
	size    int           // bytes in the request; the server ignores them
}

// runClient sends a datagram to the server and prints the time it
// answers. UDP does not resend what was lost, so the client does: when
// no reply comes in time it sends again, waiting twice as long each
// time, and after the last attempt it gives up with a clear error.
func runClient(ctx context.Context, ask request, now func() time.Time, stdout, stderr io.Writer) error {
	// Dialing UDP sends nothing. It resolves the address and fixes the
	// peer, so Write needs no address, the kernel discards datagrams
	// from anybody else, and a "port unreachable" answer from the peer's
	// host comes back as "connection refused" on the next Read.
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "udp", ask.addr)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", ask.addr, err)
	}
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	datagram := make([]byte, ask.size)
	// The reply buffer is larger than any datagram, so a reply of the
	// wrong length is seen with its real length, not cut to fit.
	reply := make([]byte, maxDatagram)
	attempts := ask.retries + 1
	wait := ask.timeout
	for attempt := 1; ; attempt++ {
		n, err := roundTrip(conn, ask.addr, datagram, reply, wait)
		switch {
		case ctx.Err() != nil:
			// Ctrl+C closed the socket under us: the user's choice,
			// not a failure, whichever step it interrupted.
			return nil
		case err == nil:
			// A late reply to an earlier attempt is as good as any:
			// each one carries the server's time.
			t, err := decode(reply[:n], ask.rfc868, now())
			if err != nil {
				return fmt.Errorf("reply from %s: %w", conn.RemoteAddr(), err)
			}
			fmt.Fprintln(stdout, t.Format(time.RFC3339))
			return nil
		case !isTimeout(err):
			return err
		case attempt == attempts:
			return fmt.Errorf("no reply from %s after %d attempts: %w", ask.addr, attempts, err)
		}
		fmt.Fprintf(stderr, "no reply within %v; sending again (attempt %d of %d)\n", wait, attempt+1, attempts)
		wait *= 2
	}
}

// roundTrip sends datagram and waits up to wait for one reply.
func roundTrip(conn net.Conn, addr string, datagram, reply []byte, wait time.Duration) (int, error) {
	// Write sends one datagram, all of it, or fails: there is no
	// partial send, and no sendall is needed.
	if _, err := conn.Write(datagram); err != nil {
		return 0, fmt.Errorf("send to %s: %w", addr, err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return 0, fmt.Errorf("set deadline: %w", err)
	}
	// Read's own error already names both ends: "read udp A->B: ...".
	return conn.Read(reply)
}

// ---- errors ----

// Winsock reports its own error numbers, which are not the syscall.E*
// values Go defines on Windows, so each cause is checked both ways.
const (
	wsaEADDRINUSE    = syscall.Errno(10048)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
	wsaEACCES        = syscall.Errno(10013)
	wsaECONNREFUSED  = syscall.Errno(10061)
	wsaEMSGSIZE      = syscall.Errno(10040)
)

// explain turns an error into the one line a learner sees, pointing to
// the entry in docs/errors.md that says what happened and what to do.
func explain(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, errNotFourBytes):
		return fmt.Sprintf("%v: is that a time server, speaking this protocol?", err)
	case errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, wsaEMSGSIZE):
		return fmt.Sprintf("%v: a UDP datagram carries at most 65507 bytes over IPv4, and the system may allow fewer (see docs/errors.md#emsgsize)", err)
	case errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE):
		return fmt.Sprintf("%v: another program already uses that UDP port; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, wsaEADDRNOTAVAIL):
		return fmt.Sprintf("%v: that IP address is not one of this machine's (see docs/errors.md#eaddrnotavail)", err)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, wsaEACCES):
		return fmt.Sprintf("%v: ports below 1024 (RFC 868's port is 37) need special permission; use a higher port (see docs/errors.md#eacces)", err)
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, wsaECONNREFUSED):
		return fmt.Sprintf("%v: the server's host says nothing receives on that UDP port; is the server running? (see docs/errors.md#econnrefused)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer in time; is a time server running there? (see docs/errors.md#timeout)", err)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%v: the host name could not be resolved (see docs/errors.md#no-such-host)", err)
	}
	return err.Error()
}

// isTimeout reports a deadline that passed (os.ErrDeadlineExceeded) or
// another timeout. Timeout is the one method of net.Error that is not
// deprecated.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
