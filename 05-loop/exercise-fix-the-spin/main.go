// Exercise 05-loop/exercise-fix-the-spin: the articles' echo server,
// translated to Go line by line, with both of its bugs. A client that
// leaves sends the server into an endless loop of empty reads; once
// that is fixed, the whole server exits when one client leaves.
//
// This file is the part you do not write: flags, listening, sending,
// saying goodbye and the error messages. Your part is serve and
// converse, in starter.go.
//
// Run it:
//
//	go run ./05-loop/exercise-fix-the-spin   # server, on 127.0.0.1:9005
//	nc 127.0.0.1 9005                        # type a line, then Ctrl+D
package main

import (
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
	flags := flag.NewFlagSet("exercise-fix-the-spin", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9005", "`host:port` to listen on (port 0 picks a free port)")
	idle := flags.Duration("idle-timeout", 30*time.Second, "close a client that sends nothing, or reads nothing, for this long")
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

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	defer ln.Close()
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	// Ctrl+C closes the listener, which wakes a blocked Accept.
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()

	if err := serve(ctx, ln, *idle, stdout); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

// greeting is the one line every client gets when its turn comes.
const greeting = "welcome to exercise-fix-the-spin: every message you send comes back after OK...\n"

// Besides the errors Read and Write return, a conversation ends for
// these reasons.
var (
	errIdle       = errors.New("client sent nothing for the idle timeout")
	errNotReading = errors.New("client does not read its replies")
	errStopping   = errors.New("server shutting down")
)

// send writes p to the client, with a deadline: a client that never
// reads must not hold the server, and everyone queued behind it.
func send(conn net.Conn, p []byte, idle time.Duration) error {
	if err := conn.SetWriteDeadline(time.Now().Add(idle)); err != nil {
		return err
	}
	if _, err := conn.Write(p); err != nil {
		if isTimeout(err) {
			return errNotReading
		}
		return err
	}
	return nil
}

// goodbye ends a conversation the way its ending calls for, logs one
// line about it, and closes the connection. why is what converse
// returned.
func goodbye(conn net.Conn, why error, idle time.Duration, stdout io.Writer) {
	defer conn.Close()
	who := conn.RemoteAddr()
	switch {
	case why == nil || errors.Is(why, io.EOF):
		// The client closed its side, and we have read everything it
		// sent: closing now sends a FIN, not a reset.
		fmt.Fprintf(stdout, "client %s left\n", who)
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

// closeGracefully says last words, then ends the connection with a FIN
// rather than a reset: closing a socket that still has unread input
// makes the kernel send RST, and the client may lose the last line. So
// write, say we are done writing, discard what the client still sends
// until it closes too (at most a second), then close.
func closeGracefully(conn net.Conn, last string) {
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(conn, last); err != nil {
		return // the client is gone; the caller's Close is enough
	}
	if tcp, ok := conn.(interface{ CloseWrite() error }); ok {
		tcp.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
}
