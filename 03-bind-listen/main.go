// Lesson 03-bind-listen: claim a port, listen on it, and wait.
//
// A server is built in four steps: create a socket, bind it to an
// address and port, listen, and accept. This program does the first
// three with one call, net.Listen, and then deliberately never accepts:
// clients can still connect, and they wait in the listener's queue (the
// backlog) until the program stops. Run a second copy on the same port
// to meet "address already in use".
//
// This file is the server itself. cli.go has main and the flags,
// errors.go the one-line explanations.
//
// Run it:
//
//	go run ./03-bind-listen                # listens on 127.0.0.1:9003
//	nc 127.0.0.1 9003                      # in a second terminal: it connects
//	go run ./03-bind-listen                # in a third: address already in use
package main

import (
	"context"
	"fmt"
	"io"
	"net"
)

// listenAndWait listens on addr, prints the address it got, and waits
// until ctx is cancelled without ever calling Accept.
func listenAndWait(ctx context.Context, addr string, stdout io.Writer) error {
	// net.Listen does three of the four steps: it creates the socket
	// (and, on Unix, sets SO_REUSEADDR on it), binds it to addr, and
	// tells the kernel to listen, with the largest backlog the system
	// allows. Binding is where a busy port is refused.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()

	// With port 0 the kernel chose the port: print the real address.
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	fmt.Fprintln(stdout, "nobody calls Accept here: clients that connect wait in the backlog; press Ctrl+C to stop")

	// The fourth step, Accept, never happens. The kernel still completes
	// each client's handshake and queues the connection, so clients see
	// a successful connect. The program just waits for Ctrl+C.
	<-ctx.Done()

	// Closing the listener gives the port back. The connections that
	// were still queued, never accepted, are dropped with it.
	if err := ln.Close(); err != nil {
		return fmt.Errorf("close listener: %w", err)
	}
	fmt.Fprintln(stdout, "stopped: the port is free again, and clients still waiting in the backlog were dropped")
	return nil
}
