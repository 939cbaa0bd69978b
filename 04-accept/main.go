// Lesson 04-accept: accept exactly one client, echo one message, exit.
//
// A listening socket does nothing by itself. Accept takes the next
// connection from the backlog and returns a *new* socket for talking to
// that one client; the listening socket stays as it was, ready for more.
// This program accepts a single client, prints who it is, reads one
// message, sends the same bytes back and exits.
//
// This file is the server itself. cli.go has main and the flags,
// client.go the -client, errors.go the one-line explanations.
//
// Run it:
//
//	go run ./04-accept                 # server, on 127.0.0.1:9004
//	go run ./04-accept -client         # in a second terminal
//	nc 127.0.0.1 9004                  # or use nc / telnet as the client
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// serveOne listens on addr, accepts one client, echoes one read and
// returns. Cancelling ctx before a client arrives returns nil: stopping a
// server that is waiting is not an error.
func serveOne(ctx context.Context, addr string, idle time.Duration, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	// Print the real address: with port 0 the kernel chose the port.
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())

	// Accept blocks until a client connects. Closing the listener is the
	// way to wake it up, so a stopped context closes it.
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
	// From here on the listener is not needed: close it so a second
	// client is refused at once instead of waiting in the backlog.
	ln.Close()

	// RemoteAddr is the client's IP address and the port its kernel chose.
	fmt.Fprintf(stdout, "client connected from %s\n", conn.RemoteAddr())

	// The deadline stops a silent client from holding the server
	// forever; it covers both the read and the echo. It is set before a
	// stop signal can close the connection under our feet.
	if err := conn.SetDeadline(time.Now().Add(idle)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}

	// A stop signal while we talk to the client ends the conversation.
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	// One Read returns whatever has arrived so far: maybe one line, maybe
	// part of one.
	buf := make([]byte, 1024)
	n, err := conn.Read(buf)
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		fmt.Fprintln(stdout, "the client left without sending anything")
		return nil
	case n == 0 && ctx.Err() != nil:
		fmt.Fprintln(stdout, "stopped while waiting for the client")
		return nil
	case n == 0 && isReset(err):
		// The client aborted (RST) instead of closing: its kernel threw
		// away whatever it had sent. Like a client that left, it ends
		// this conversation; it is not the server's failure.
		fmt.Fprintln(stdout, "the client reset the connection; nothing to echo")
		return nil
	case n == 0:
		return fmt.Errorf("read from %s: %w", conn.RemoteAddr(), err)
	}
	fmt.Fprintf(stdout, "received %d bytes: %q\n", n, buf[:n])

	// Write sends all n bytes or returns an error: it already loops the
	// way Python's sendall does.
	if _, err := conn.Write(buf[:n]); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stdout, "stopped while answering the client")
			return nil
		}
		return fmt.Errorf("write to %s: %w", conn.RemoteAddr(), err)
	}
	closeGracefully(conn.(*net.TCPConn))
	fmt.Fprintln(stdout, "echoed it back and closed the connection")
	return nil
}

// closeGracefully ends a connection with a FIN rather than a reset.
// Closing a socket that still has unread input makes the kernel send RST,
// and the peer may then lose the reply we just wrote. So: say we are done
// writing, read and discard what the client still sends until it closes
// too (or a second passes), then close.
func closeGracefully(conn *net.TCPConn) {
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	conn.Close()
}
