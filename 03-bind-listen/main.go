// Lesson 03-bind-listen: claim a port, listen on it, and wait.
//
// A server is built in four steps: create a socket, bind it to an
// address and port, listen, and accept. This program does the first
// three with one call, net.Listen, and then deliberately never accepts:
// clients can still connect, and they wait in the listener's queue (the
// backlog) until the program stops. Run a second copy on the same port
// to meet "address already in use".
//
// Run it:
//
//	go run ./03-bind-listen                # listens on 127.0.0.1:9003
//	nc 127.0.0.1 9003                      # in a second terminal: it connects
//	go run ./03-bind-listen                # in a third: address already in use
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
// arguments and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("03-bind-listen", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9003", "`host:port` to listen on (port 0 picks a free port)")
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

	// net.Listen does three of the four steps: it creates the socket
	// (and, on Unix, sets SO_REUSEADDR on it), binds it to addr, and
	// tells the kernel to listen, with the largest backlog the system
	// allows. Binding is where a busy port is refused.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
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

// Winsock reports its own error numbers, which are not the syscall.E*
// values Go defines on Windows, so each cause is checked both ways.
const (
	wsaEADDRINUSE    = syscall.Errno(10048)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
	wsaEACCES        = syscall.Errno(10013)
)

// explain turns an error into the one line a learner sees, pointing to
// the entry in docs/errors.md that says what happened and what to do.
func explain(err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it, or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, wsaEADDRNOTAVAIL):
		return fmt.Sprintf("%v: that IP address is not one of this machine's; use 127.0.0.1, or 0.0.0.0 for every interface (see docs/errors.md#eaddrnotavail)", err)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, wsaEACCES):
		return fmt.Sprintf("%v: this port needs special permission (below 1024 on Linux) or is reserved; use a higher port (see docs/errors.md#eacces)", err)
	}
	return err.Error()
}
