// Exercise 05-loop/exercise-commands: the lesson's sequential server,
// speaking a small line-based protocol instead of echoing chunks.
//
// This file is the part you do not write: flags, the accept loop, the
// greeting, the goodbyes and the error messages, as in the lesson. Your
// part is converse, in starter.go.
//
// Run it:
//
//	go run ./05-loop/exercise-commands   # server, on 127.0.0.1:9005
//	nc 127.0.0.1 9005                    # type: time, echo hi, quit
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

// run is the whole program. Tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("exercise-commands", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9005", "`host:port` to listen on (port 0 picks a free port)")
	idle := flags.Duration("idle-timeout", 30*time.Second, "close a client that sends no line, or reads nothing, for this long")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	switch {
	case flags.NArg() > 0:
		fmt.Fprintf(stderr, "unexpected argument %q\n", flags.Arg(0))
		flags.Usage()
		return errUsage
	case *idle <= 0:
		fmt.Fprintln(stderr, "-idle-timeout must be more than 0")
		flags.Usage()
		return errUsage
	}
	return serve(ctx, *addr, *idle, stdout)
}

// serve listens on addr and serves clients one after another, as the
// lesson does, until ctx is cancelled.
func serve(ctx context.Context, addr string, idle time.Duration, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	// Ctrl+C closes the listener, which wakes a blocked Accept.
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()

	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			return fmt.Errorf("accept: %w", err)
		}
		handle(ctx, conn, idle, stdout)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

// greeting is the one line every client gets when its turn comes.
const greeting = "welcome to exercise-commands: time, echo TEXT, quit\n"

// maxLine is the longest line the server takes, its newline included.
const maxLine = 1024

// Besides the errors Read and Write return, a conversation ends for
// these reasons.
var (
	errQuit       = errors.New("client said quit")
	errIdle       = errors.New("client sent nothing for the idle timeout")
	errNotReading = errors.New("client does not read its replies")
	errStopping   = errors.New("server shutting down")
)

// handle serves one client: greets it, lets converse talk to it, then
// says goodbye the way the conversation's ending calls for, logs one
// line about it and closes the connection.
func handle(ctx context.Context, conn net.Conn, idle time.Duration, stdout io.Writer) {
	defer conn.Close()
	who := conn.RemoteAddr()
	fmt.Fprintf(stdout, "client %s connected\n", who)

	// Ctrl+C wakes a Read that waits for this client.
	stopConn := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	why := send(conn, greeting, idle)
	if why == nil {
		why = converse(ctx, conn, idle)
	}
	stopConn()

	switch {
	case why == nil || errors.Is(why, io.EOF):
		// Everything the client sent has been read: closing now sends
		// a FIN, not a reset.
		fmt.Fprintf(stdout, "client %s left\n", who)
	case errors.Is(why, errQuit):
		fmt.Fprintf(stdout, "client %s quit\n", who)
		closeGracefully(conn, "bye\n")
	case errors.Is(why, bufio.ErrTooLong):
		fmt.Fprintf(stdout, "client %s sent a line longer than %d bytes, closed\n", who, maxLine)
		closeGracefully(conn, fmt.Sprintf("error: line longer than %d bytes, closing\n", maxLine))
	case errors.Is(why, errIdle):
		fmt.Fprintf(stdout, "client %s idle, closed\n", who)
		closeGracefully(conn, fmt.Sprintf("bye: idle for %v, closing\n", idle))
	case errors.Is(why, errStopping):
		fmt.Fprintf(stdout, "client %s closed at shutdown\n", who)
		closeGracefully(conn, "bye: server shutting down\n")
	case errors.Is(why, errNotReading):
		fmt.Fprintf(stdout, "client %s stopped reading, closed\n", who)
	case isReset(why):
		fmt.Fprintf(stdout, "client %s reset the connection\n", who)
	default:
		fmt.Fprintf(stdout, "client %s dropped: %s\n", who, explain(why))
	}
}

// ending says why reading from the client stopped, given the error that
// stopped it: nil (a Scanner's way of saying the stream ended) or io.EOF
// means the client left; a deadline means it was idle, or that Ctrl+C
// woke the Read; anything else is returned as it is.
func ending(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return io.EOF
	case isTimeout(err) && ctx.Err() != nil:
		return errStopping
	case isTimeout(err):
		return errIdle
	}
	return err
}

// send writes s to the client, with a deadline: a client that never
// reads must not hold the server, and everyone queued behind it.
func send(conn net.Conn, s string, idle time.Duration) error {
	if err := conn.SetWriteDeadline(time.Now().Add(idle)); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, s); err != nil {
		if isTimeout(err) {
			return errNotReading
		}
		return err
	}
	return nil
}

// closeGracefully says last words, then ends the connection with a FIN
// rather than a reset: closing a socket that still has unread input
// (the rest of a long line, say) makes the kernel send RST, and the
// client may lose the last line. So write, say we are done writing,
// discard what the client still sends until it closes too (at most a
// second), and leave the Close to the caller.
func closeGracefully(conn net.Conn, last string) {
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(conn, last); err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
}
