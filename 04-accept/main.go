// Lesson 04-accept: accept exactly one client, echo one message, exit.
//
// A listening socket does nothing by itself. Accept takes the next
// connection from the backlog and returns a *new* socket for talking to
// that one client; the listening socket stays as it was, ready for more.
// This program accepts a single client, prints who it is, reads one
// message, sends the same bytes back and exits.
//
// Run it:
//
//	go run ./04-accept                 # server, on 127.0.0.1:9004
//	go run ./04-accept -client         # in a second terminal
//	nc 127.0.0.1 9004                  # or use nc / telnet as the client
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// main only wires the process: flags come from os.Args, Ctrl+C and
// SIGTERM cancel ctx, and an error becomes one line on stderr.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		// -h printed the usage; asking for help is not a failure.
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "error:", explain(err))
		os.Exit(1)
	}
}

// errUsage marks a bad command line; the flag package already said why.
var errUsage = errors.New("bad command line")

// run is the whole program. Tests call it directly with their own
// arguments, input and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("04-accept", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9004", "`host:port` to listen on (port 0 picks a free port), or to connect to with -client")
	client := flags.Bool("client", false, "connect to -addr and send each line of standard input")
	idle := flags.Duration("idle-timeout", 30*time.Second, "how long to wait for the client to send something")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", flags.Arg(0))
		flags.Usage()
		return errUsage
	}

	if *client {
		return runClient(ctx, *addr, *idle, stdin, stdout)
	}
	return serveOne(ctx, *addr, *idle, stdout)
}

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

// runClient connects to addr, then for each line of stdin sends it and
// prints the reply. When stdin ends it half-closes the connection, prints
// whatever the server still sends, and returns when the server closes.
func runClient(ctx context.Context, addr string, timeout time.Duration, stdin io.Reader, stdout io.Writer) error {
	dialer := net.Dialer{Timeout: 5 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	replies := bufio.NewReader(conn)
	lines := bufio.NewScanner(stdin)
	for lines.Scan() {
		if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(conn, "%s\n", lines.Text()); err != nil {
			return fmt.Errorf("send to %s: %w", addr, err)
		}
		// Wait for the reply before sending the next line, so each
		// answer is printed under the question that caused it.
		reply, err := replies.ReadString('\n')
		fmt.Fprint(stdout, reply)
		if errors.Is(err, io.EOF) {
			// The server closed: there is nobody left to send to.
			return nil
		}
		if err != nil {
			return fmt.Errorf("read from %s: %w", addr, err)
		}
	}
	if err := lines.Err(); err != nil {
		return fmt.Errorf("read standard input: %w", err)
	}

	// Half-close: the server reads EOF, but we can still read its answer.
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("close write side: %w", err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := io.Copy(stdout, replies); err != nil {
		return fmt.Errorf("read from %s: %w", addr, err)
	}
	return nil
}

// Winsock reports its own error numbers, which are not the syscall.E*
// values Go defines on Windows, so each cause is checked both ways.
const (
	wsaEADDRINUSE    = syscall.Errno(10048)
	wsaECONNREFUSED  = syscall.Errno(10061)
	wsaECONNRESET    = syscall.Errno(10054)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
	wsaEACCES        = syscall.Errno(10013)
)

// explain turns an error into the one line a learner sees, pointing to
// the entry in docs/errors.md that says what happened and what to do.
func explain(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, wsaEADDRNOTAVAIL):
		return fmt.Sprintf("%v: that IP address is not one of this machine's (see docs/errors.md#eaddrnotavail)", err)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, wsaEACCES):
		return fmt.Sprintf("%v: ports below 1024 need special permission; use a higher port (see docs/errors.md#eacces)", err)
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, wsaECONNREFUSED):
		return fmt.Sprintf("%v: nothing listens at that address; is the server running? (see docs/errors.md#econnrefused)", err)
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, wsaECONNRESET):
		return fmt.Sprintf("%v: the peer aborted the connection (see docs/errors.md#econnreset)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer in time (see docs/errors.md#timeout)", err)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%v: the host name could not be resolved (see docs/errors.md#no-such-host)", err)
	}
	return err.Error()
}

// isReset reports a connection the peer aborted with RST instead of
// closing it with FIN.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, wsaECONNRESET)
}

// isTimeout reports a deadline that passed: a read or write deadline
// (os.ErrDeadlineExceeded) or a dial that gave up. Timeout is the one
// method of net.Error that is not deprecated.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
