// Exercise 04-accept/exercise-quit: still one client, but a whole
// conversation: echo every line until the client says quit.
//
// This file is the part you do not write: flags, listening, accepting
// the one client, the clean close and the error messages, as in the
// lesson. Your part is converse, in starter.go.
//
// Run it:
//
//	go run ./04-accept/exercise-quit      # server, on 127.0.0.1:9004
//	nc 127.0.0.1 9004                     # type lines, then quit
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
	flags := flag.NewFlagSet("exercise-quit", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9004", "`host:port` to listen on (port 0 picks a free port)")
	idle := flags.Duration("idle-timeout", 30*time.Second, "how long to wait for each line from the client")
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

// serveOne listens on addr, accepts one client, lets converse talk to
// it, and closes the connection cleanly. As in the lesson, a second
// client is refused: the listener closes once the first is accepted.
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
	ln.Close()
	fmt.Fprintf(stdout, "client connected from %s\n", conn.RemoteAddr())
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	err = converse(conn.(*net.TCPConn), idle, stdout)
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "stopped while talking to the client")
		return nil
	}
	if err != nil {
		return err
	}
	closeGracefully(conn.(*net.TCPConn))
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
