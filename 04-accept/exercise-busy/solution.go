//go:build solution

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// serveOne listens on addr, serves one client with echoOne, and tells
// every other client that arrives meanwhile that it is busy.
//
// The kernel completes a TCP handshake for any client while the
// listener is open, whether or not the program calls Accept; closing
// the listener makes it refuse them with a reset. To say something
// instead, the server must accept them, and it must do so while it is
// busy with the first client: that takes a second goroutine.
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

	// The listener stays open: a goroutine turns away whoever comes
	// next, until the listener is closed below.
	turnedAway := make(chan struct{})
	go func() {
		defer close(turnedAway)
		turnAway(ln, stdout)
	}()

	err = echoOne(ctx, conn.(*net.TCPConn), idle, stdout)

	// Closing the listener makes the goroutine's Accept fail, so it
	// ends; waiting for it means no goroutine outlives serveOne.
	ln.Close()
	<-turnedAway
	return err
}

// turnAway accepts clients until the listener is closed, and tells
// each one that the server is busy.
func turnAway(ln net.Listener, stdout io.Writer) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return // the listener was closed: the first client is done
		}
		// Two goroutines print to stdout; each Fprintf is one Write,
		// and the lines they print do not depend on each other's order.
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := io.WriteString(conn, busyMessage); err != nil {
			fmt.Fprintf(stdout, "could not turn away %s: %v\n", conn.RemoteAddr(), err)
			conn.Close()
			continue
		}
		// Gracefully: a client that already sent something would
		// otherwise get a reset, and might lose the message.
		closeGracefully(conn.(*net.TCPConn))
		fmt.Fprintf(stdout, "turned away %s\n", conn.RemoteAddr())
	}
}
