// Exercise 09-udp/exercise-whoami: a UDP "what is my address" service.
// Every question is answered with the address and port it came from,
// as text.
//
// This file is the part you do not write: flags, the client and what
// is never answered (errors.go holds the error messages). Your part is
// serve, in starter.go.
//
// Run it:
//
//	go run ./09-udp/exercise-whoami              # server, on 127.0.0.1:9009
//	go run ./09-udp/exercise-whoami -client      # in a second terminal
package main

import (
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

// run is the whole program: the server, or with -client one question.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("exercise-whoami", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9009", "`host:port` to listen on (port 0 picks a free port), or to ask with -client")
	client := flags.Bool("client", false, "ask the server at -addr what our address is")
	timeout := flags.Duration("timeout", 2*time.Second, "client: how long to wait for the answer")
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
	if *client {
		return askAddress(ctx, *addr, *timeout, stdout)
	}
	return serve(ctx, *addr, stdout)
}

// maxDatagram is larger than any UDP datagram, so no read cuts one short.
const maxDatagram = 64 * 1024

// askAddress sends one empty datagram to addr and prints the answer:
// the address the server saw this socket send from.
func askAddress(ctx context.Context, addr string, timeout time.Duration, stdout io.Writer) error {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", addr, err)
	}
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	if _, err := conn.Write(nil); err != nil {
		return fmt.Errorf("send to %s: %w", addr, err)
	}
	// A lost datagram never arrives: wait with a deadline. (The lesson's
	// client also sends again; this one keeps to one try.)
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	buf := make([]byte, maxDatagram)
	n, err := conn.Read(buf)
	if ctx.Err() != nil {
		return nil // Ctrl+C: the user's choice, not a failure
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "the server sees me as %s", buf[:n])
	return nil
}

// ---- what is never answered ----

// ignore says why the datagram data from `from` must not be answered,
// or "" when it is a question to answer. UDP's source address is not
// checked, so anybody can forge it. A server that answered everything
// would answer a datagram forged from its own address with a datagram
// to itself, and answer that, forever; two servers forged at each
// other would do the same. So a datagram that could be an answer, from
// this service or another, is never taken for a question.
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
	case bytes.IndexByte(data, ':') >= 0:
		// Every answer holds a colon, between address and port: a
		// datagram with one could be an answer, so it is no question.
		return "it holds a colon, as every answer does"
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
