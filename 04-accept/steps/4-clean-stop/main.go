// Step 4 of 04-accept: Ctrl+C stops the server cleanly, whether it waits
// for a client or for the client's message.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9004", "host:port to listen on")
	idle := flag.Duration("idle-timeout", 30*time.Second, "how long to wait for the client to send something")
	flag.Parse()
	// Ctrl+C and SIGTERM no longer kill the process: they cancel ctx.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serveOne(ctx, *addr, *idle, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// serveOne listens on addr, accepts one client and echoes one read.
// Cancelling ctx ends the wait, and is not an error.
func serveOne(ctx context.Context, addr string, idle time.Duration, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
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
		return err
	}
	defer conn.Close()

	// RemoteAddr is the client's IP address and the port its kernel chose.
	fmt.Fprintf(stdout, "client connected from %s\n", conn.RemoteAddr())

	// The deadline stops a silent client from holding the server
	// forever; it covers both the read and the echo. It is set before a
	// stop signal can close the connection under our feet.
	if err := conn.SetDeadline(time.Now().Add(idle)); err != nil {
		return err
	}

	// A stop signal while we talk to the client ends the conversation.
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	// One Read returns whatever has arrived so far: maybe one line, maybe
	// part of one.
	buf := make([]byte, 1024)
	n, err := conn.Read(buf)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stdout, "stopped while waiting for the client")
			return nil
		}
		return err
	}
	fmt.Fprintf(stdout, "received %d bytes: %q\n", n, buf[:n])

	// Write sends all n bytes or returns an error: it already loops the
	// way Python's sendall does.
	if _, err := conn.Write(buf[:n]); err != nil {
		return err
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
