// Exercise 09-udp/exercise-retry: a UDP client that numbers its
// requests, sends again with exponential backoff when no answer comes,
// and ignores replies that do not answer the request it waits for.
//
// This file is the part you do not write: flags, the server and the
// wire format (errors.go holds the error messages). Your part is
// client.ask, in starter.go.
//
// Run it:
//
//	go run ./09-udp/exercise-retry -drop 1 -dup   # a lossy server
//	go run ./09-udp/exercise-retry -client        # type lines
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
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

// run is the whole program: the echo server, or with -client the client.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("exercise-retry", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9009", "`host:port` to listen on, or to send to with -client")
	client := flags.Bool("client", false, "send each line of standard input as a numbered request")
	drop := flags.Int("drop", 0, "server: ignore this many datagrams first, as a lossy network would")
	dup := flags.Bool("dup", false, "server: answer every datagram twice, as a duplicating network would")
	timeout := flags.Duration("timeout", 200*time.Millisecond, "client: wait for the first attempt; each retry waits twice as long")
	retries := flags.Int("retries", 3, "client: how many times to send again when no reply comes")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if flags.NArg() > 0 || *drop < 0 || *timeout <= 0 || *retries < 0 {
		fmt.Fprintln(stderr, "no arguments; -drop and -retries must not be negative, -timeout must be positive")
		flags.Usage()
		return errUsage
	}
	if *client {
		return runClient(ctx, *addr, *timeout, *retries, stdin, stdout, stderr)
	}
	return serve(ctx, *addr, *drop, *dup, stdout)
}

// ---- the wire format ----

// A request is one datagram of text: its number, a space, the message,
// as in "1 hello". The server echoes it after "re ", as in
// "re 1 hello", so the client can tell which request a reply answers,
// and nobody can take a reply for a request: a plain echo would answer
// an echo, and two echo servers forged at each other would answer each
// other forever.
func encodeRequest(seq uint32, msg string) []byte {
	return []byte(strconv.FormatUint(uint64(seq), 10) + " " + msg)
}

// isRequest reports whether b is a request: a number, a space, text.
func isRequest(b []byte) bool {
	num, _, found := bytes.Cut(b, []byte(" "))
	_, err := strconv.ParseUint(string(num), 10, 32)
	return found && err == nil
}

// replyPrefix starts every reply, and no request.
const replyPrefix = "re "

// parseReply splits a reply into its number and its text. ok is false
// when the datagram is not "re ", a number, a space and text.
func parseReply(b []byte) (seq uint32, text string, ok bool) {
	request, isReply := bytes.CutPrefix(b, []byte(replyPrefix))
	if !isReply {
		return 0, "", false
	}
	num, rest, found := bytes.Cut(request, []byte(" "))
	if !found {
		return 0, "", false
	}
	n, err := strconv.ParseUint(string(num), 10, 32)
	if err != nil {
		return 0, "", false
	}
	return uint32(n), string(rest), true
}

// maxDatagram is larger than any UDP datagram, so no read cuts one short.
const maxDatagram = 64 * 1024

// ---- the client ----

// client asks one server, over a dialed UDP socket, one request at a
// time. seq is the number of the last request sent; the first is 1.
type client struct {
	conn    net.Conn      // a UDP socket dialed to the server
	timeout time.Duration // how long to wait after the first send
	retries int           // how many times to send again
	log     io.Writer     // where retries and ignored replies are reported
	seq     uint32
}

// runClient asks the server once per line of stdin and prints each
// answer. The client's log goes to stderr, so stdout holds only answers.
func runClient(ctx context.Context, addr string, timeout time.Duration, retries int, stdin io.Reader, stdout, stderr io.Writer) error {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", addr, err)
	}
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	c := &client{conn: conn, timeout: timeout, retries: retries, log: stderr}
	lines := bufio.NewScanner(stdin)
	for lines.Scan() {
		answer, err := c.ask(lines.Text())
		if ctx.Err() != nil {
			return nil // Ctrl+C: the user's choice, not a failure
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, answer)
	}
	return lines.Err()
}

// ---- the server ----

// serve echoes every request to its sender, except the first drop
// requests, which it ignores; with dup it sends every echo twice. It
// never answers what could be a reply, nor a datagram from its own
// address or from a port below 1024 (see ignore).
func serve(ctx context.Context, addr string, drop int, dup bool, stdout io.Writer) error {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer conn.Close()
	fmt.Fprintf(stdout, "listening on %s\n", conn.LocalAddr())
	stopRead := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopRead()

	copies, twice := 1, ""
	if dup {
		copies, twice = 2, ", twice"
	}
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := conn.ReadFrom(buf)
		if ctx.Err() != nil {
			fmt.Fprintln(stdout, "stopped")
			return nil
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if why := ignore(buf[:n], from, conn.LocalAddr()); why != "" {
			fmt.Fprintf(stdout, "ignored %s from %s: %s\n", quote(buf[:n]), from, why)
			continue
		}
		if drop > 0 {
			drop--
			fmt.Fprintf(stdout, "dropped %s from %s\n", quote(buf[:n]), from)
			continue
		}
		reply := append([]byte(replyPrefix), buf[:n]...)
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		for i := 0; i < copies; i++ {
			if _, err := conn.WriteTo(reply, from); err != nil {
				fmt.Fprintf(stdout, "echo to %s failed: %v\n", from, err)
			}
		}
		fmt.Fprintf(stdout, "echoed %s to %s%s\n", quote(buf[:n]), from, twice)
	}
}

// ignore says why the datagram data from `from` must not be answered,
// or "" when it is a request to echo. UDP's source address is not
// checked, so anybody can forge it; these rules keep a forged datagram
// from starting a loop.
func ignore(data []byte, from, self net.Addr) string {
	src, ok := from.(*net.UDPAddr)
	if !ok {
		return "not a UDP address"
	}
	switch {
	case isOwnAddress(src.AddrPort(), self.(*net.UDPAddr).AddrPort()):
		return "it comes from this server's own address"
	case src.Port < 1024:
		// Below 1024 live services such as echo (7) and chargen (19)
		// that answer whatever arrives.
		return fmt.Sprintf("it comes from port %d, below 1024", src.Port)
	case !isRequest(data):
		return "not a request"
	}
	return ""
}

// isOwnAddress reports whether from is the server's own socket: its
// port, and its IP address or, for a server bound to every address
// (0.0.0.0 or ::), loopback or any address of this machine.
func isOwnAddress(from, self netip.AddrPort) bool {
	if from.Port() != self.Port() {
		return false
	}
	ip, own := from.Addr().Unmap().WithZone(""), self.Addr().Unmap().WithZone("")
	if ip == own || (own.IsUnspecified() && ip.IsLoopback()) {
		return true
	}
	if !own.IsUnspecified() {
		return false
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap().WithZone("") == ip {
			return true
		}
	}
	return false
}

// quote shows a datagram in a log line, quoted, and at most its first
// 32 bytes, so that a line costs little more than what caused it.
func quote(b []byte) string {
	const shown = 32
	if len(b) <= shown {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q… (%d bytes)", b[:shown], len(b))
}
