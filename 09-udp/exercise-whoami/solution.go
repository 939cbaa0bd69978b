//go:build solution

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// serve answers every question that reaches addr with the address it
// came from, until ctx is done.
//
// ReadFrom says who sent each datagram: the IP address and the port
// the sender's kernel chose for its socket. That is all this service
// needs, so it keeps no state and ignores what the datagram holds.
func serve(ctx context.Context, addr string, stdout io.Writer) error {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer conn.Close()
	fmt.Fprintf(stdout, "listening on %s\n", conn.LocalAddr())
	// Closing the socket is the way to wake a blocked ReadFrom.
	stopRead := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopRead()

	buf := make([]byte, 64*1024)
	for {
		n, from, err := conn.ReadFrom(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		// A datagram that could be an answer is never answered, or two
		// servers could answer each other forever (see ignore).
		if why := ignore(buf[:n], from, conn.LocalAddr()); why != "" {
			fmt.Fprintf(stdout, "ignored %s: %s\n", from, why)
			continue
		}
		// from.String() is "127.0.0.1:52814", or "[::1]:52814" for
		// IPv6, where the brackets keep the port apart from the colons.
		reply := []byte(from.String() + "\n")
		// A UDP send blocks only while the send buffer is full; the
		// deadline keeps even that short.
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := conn.WriteTo(reply, from); err != nil {
			// One sender's trouble must not stop the server.
			fmt.Fprintf(stdout, "reply to %s failed: %v\n", from, err)
			continue
		}
		fmt.Fprintf(stdout, "told %s its address\n", from)
	}
}
