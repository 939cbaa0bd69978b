//go:build solution

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// serve accepts clients one after another and lets converse talk to
// each, until Ctrl+C closes the listener.
//
// Two loops, one inside the other: this one accepts, converse talks.
// However a conversation ends, the client leaving, falling silent or
// resetting, it ends only the inner loop; this one goes back to Accept.
func serve(ctx context.Context, ln net.Listener, idle time.Duration, stdout io.Writer) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil // Ctrl+C closed the listener
			}
			return fmt.Errorf("accept: %w", err)
		}
		who := conn.RemoteAddr()
		fmt.Fprintf(stdout, "client %s connected\n", who)

		// Ctrl+C wakes a Read that waits for this client.
		stopConn := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
		why := converse(ctx, conn, idle)
		stopConn()

		// The conversation is over, not the server: close this client
		// the way its ending calls for, and take the next.
		goodbye(conn, why, idle, stdout)
	}
}

// converse greets the client, then answers each chunk it sends with
// "OK..." and that chunk. It returns why the conversation ended: io.EOF
// when the client left, errIdle or errStopping, or the network error
// that broke the connection.
func converse(ctx context.Context, conn net.Conn, idle time.Duration) error {
	buf := make([]byte, 4096)
	if err := send(conn, []byte(greeting), idle); err != nil {
		return err
	}
	for {
		// A fresh deadline for each wait. Ctrl+C may come just before
		// this line undoes its deadline, so check for it after.
		if err := conn.SetReadDeadline(time.Now().Add(idle)); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return errStopping
		}

		// Use the n bytes first, then look at the error: that is the
		// order io.Reader promises.
		n, err := conn.Read(buf)
		if n > 0 {
			reply := append([]byte("OK..."), buf[:n]...)
			if err := send(conn, reply, idle); err != nil {
				return err
			}
		}
		switch {
		case err == nil:
			continue
		case isTimeout(err) && ctx.Err() != nil:
			return errStopping
		case isTimeout(err):
			return errIdle
		default:
			// io.EOF: the client closed its side, and nothing will
			// ever come again. Python's recv says it with b"", and the
			// article's fix is "if not data: break". A reset ends the
			// conversation as surely.
			return err
		}
	}
}
