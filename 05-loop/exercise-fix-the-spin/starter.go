//go:build !solution

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
// each. See README.md for the task.
//
// As it stands it treats the end of a conversation as the end of the
// server. You will not see that until converse stops spinning.
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

		// TODO 2: this is the article's second bug, in Go's most common
		// habit: an error comes back, so return it. But converse always
		// returns why the conversation ended (io.EOF when the client
		// left), and returning it here ends the whole server. Whatever
		// converse returned, let goodbye(conn, why, idle, stdout) end
		// this client's connection and log it, then accept the next.
		if why != nil {
			conn.Close()
			return fmt.Errorf("client %s: %w", who, why)
		}
		goodbye(conn, why, idle, stdout)
	}
}

// converse greets the client, then answers each chunk it sends with
// "OK..." and that chunk. It returns why the conversation ended.
//
// As it stands it only looks at n, like the article's loop only looked
// at the data: once the client leaves, it reads nothing, for ever.
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

		n, err := conn.Read(buf)
		if n > 0 {
			reply := append([]byte("OK..."), buf[:n]...)
			if err := send(conn, reply, idle); err != nil {
				return err
			}
		}
		if isTimeout(err) && ctx.Err() != nil {
			return errStopping
		}
		if isTimeout(err) {
			return errIdle
		}

		// TODO 1: this is the article's first bug. When the client has
		// closed its side, Read returns 0 and io.EOF, and then again at
		// once on every call: this loop spins. Any error other than
		// the timeouts above ends the conversation for good: return it
		// (io.EOF when the client left, a reset when it aborted).
	}
}
