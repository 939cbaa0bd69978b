package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

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
