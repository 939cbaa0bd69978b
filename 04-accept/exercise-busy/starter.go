//go:build !solution

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// serveOne listens on addr, serves one client with echoOne, and tells
// every other client that arrives meanwhile that it is busy. See
// README.md for the task.
//
// As it stands it is the lesson's server: it closes the listener once
// the first client is in, so the kernel refuses the others.
func serveOne(ctx context.Context, addr string, idle time.Duration, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()

	conn, err := ln.Accept()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stdout, "stopped before any client connected")
			return nil
		}
		return fmt.Errorf("accept: %w", err)
	}
	defer conn.Close()
	fmt.Fprintf(stdout, "client connected from %s\n", conn.RemoteAddr())

	// TODO 1: do not close the listener here. Start a goroutine that
	// keeps calling ln.Accept() while the first client is served. Each
	// client it accepts gets busyMessage (with a write deadline), is
	// closed with closeGracefully, and is logged as
	//   turned away 127.0.0.1:52816
	// The goroutine ends when Accept fails: that happens once the
	// listener is closed.
	ln.Close()

	err = echoOne(ctx, conn.(*net.TCPConn), idle, stdout)

	// TODO 2: once the first client is done, close the listener (so the
	// kernel refuses clients again, and the goroutine's Accept fails)
	// and wait for the goroutine to end, for example on a channel it
	// closes. Only then return.
	return err
}
