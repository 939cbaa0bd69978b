//go:build !solution

package main

import (
	"context"
	"fmt"
	"io"
	"net"
)

// serve answers every question that reaches addr with the address it
// came from, until ctx is done. See README.md for the task.
//
// As it stands it receives datagrams and answers none of them.
func serve(ctx context.Context, addr string, stdout io.Writer) error {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer conn.Close()
	fmt.Fprintf(stdout, "listening on %s\n", conn.LocalAddr())
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
		// TODO: send one datagram back to from: its address as text
		// (from.String()) and a newline, such as "127.0.0.1:52814\n".
		// Use conn.WriteTo, with a write deadline. If the send fails,
		// log it on stdout and go on: one client must not stop the
		// server. When it succeeds, print
		//   told 127.0.0.1:52814 its address
		_ = from
	}
}
