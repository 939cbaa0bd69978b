// Exercise 04-accept/exercise-busy: still one client at a time, but a
// second client is told "busy" by the server instead of being refused
// by the kernel.
//
// This file is the part you do not write: flags, the lesson's one-
// message echo, the clean close and the error messages. Your part is
// serveOne, in starter.go.
//
// Run it:
//
//	go run ./04-accept/exercise-busy      # server, on 127.0.0.1:9004
//	nc 127.0.0.1 9004                     # the first client: stays
//	nc 127.0.0.1 9004                     # a second one: told busy
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
	flags := flag.NewFlagSet("exercise-busy", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9004", "`host:port` to listen on (port 0 picks a free port)")
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
	return serveOne(ctx, *addr, *idle, stdout)
}

// busyMessage is all a client gets while another is being served.
const busyMessage = "busy: serving another client; try again later\n"

// echoOne is the lesson's conversation: read once, echo it, close
// cleanly. A stop (Ctrl+C) closes the connection under it; whichever
// step that interrupts, it is the user's choice, not a failure.
func echoOne(ctx context.Context, conn *net.TCPConn, idle time.Duration, stdout io.Writer) error {
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()
	err := echo(conn, idle, stdout)
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "stopped while talking to the client")
		return nil
	}
	return err
}

// echo reads once, sends the same bytes back and closes gracefully.
func echo(conn *net.TCPConn, idle time.Duration, stdout io.Writer) error {
	buf := make([]byte, 1024)
	if err := conn.SetReadDeadline(time.Now().Add(idle)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	n, err := conn.Read(buf)
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		fmt.Fprintln(stdout, "the client left without sending anything")
		return nil
	case n == 0:
		return fmt.Errorf("read from %s: %w", conn.RemoteAddr(), err)
	}
	fmt.Fprintf(stdout, "received %d bytes: %q\n", n, buf[:n])
	if err := conn.SetWriteDeadline(time.Now().Add(idle)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	if _, err := conn.Write(buf[:n]); err != nil {
		return fmt.Errorf("write to %s: %w", conn.RemoteAddr(), err)
	}
	closeGracefully(conn)
	fmt.Fprintln(stdout, "echoed it back and closed the connection")
	return nil
}

// closeGracefully ends a connection with a FIN rather than a reset: say
// we are done writing, discard what the client still sends until it
// closes too (or a second passes), then close.
func closeGracefully(conn *net.TCPConn) {
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	conn.Close()
}
