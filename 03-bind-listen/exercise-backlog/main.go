// Exercise: choose the backlog, and count the clients that queue.
//
// Lesson 03 showed that clients connect to a listener nobody accepts
// from, and wait in its queue, the backlog; Go always asks for the
// largest one the system allows. This exercise asks for a small one and
// measures it: connect clients one after another, without accepting,
// until one cannot get in. The part you write is in starter.go; this
// file wires the command line, and relisten_*.go hold the system call.
//
// Run it:
//
//	go run ./03-bind-listen/exercise-backlog -backlog 3
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
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		// -h printed the usage; asking for help is not a failure.
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// errUsage marks a bad command line; the flag package already said why.
var errUsage = errors.New("bad command line")

// run listens on a free port with the chosen backlog, then fills the
// queue with clients and says how many got in.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("backlog", flag.ContinueOnError)
	flags.SetOutput(stderr)
	backlog := flags.Int("backlog", 3, "the queue length to ask listen() for")
	limit := flags.Int("max", 64, "stop after this many clients")
	timeout := flags.Duration("timeout", 300*time.Millisecond, "how long each client waits to connect")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if flags.NArg() > 0 || *backlog < 1 || *limit < 1 || *timeout <= 0 {
		fmt.Fprintln(stderr, "want -backlog and -max of 1 or more, a positive -timeout, and no arguments")
		flags.Usage()
		return errUsage
	}

	ln, err := listenBacklog(ctx, "127.0.0.1:0", *backlog)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Fprintf(stdout, "listening on %s with backlog %d; nobody accepts\n", ln.Addr(), *backlog)
	n, err := queueDepth(ctx, ln.Addr().String(), *limit, *timeout)
	if err != nil {
		return err
	}
	if n == *limit {
		fmt.Fprintf(stdout, "%d clients connected, and all got in\n", n)
		return nil
	}
	fmt.Fprintf(stdout, "%d clients connected; client %d could not get in within %v\n", n, n+1, *timeout)
	return nil
}

// errBadBacklog is a backlog below 1.
var errBadBacklog = errors.New("the backlog must be 1 or more")

// cannotGetIn reports the two ways a full queue turns a client away:
// Linux drops its connection request, so the client times out; other
// systems may refuse it at once.
func cannotGetIn(err error) bool {
	var netErr net.Error
	return (errors.As(err, &netErr) && netErr.Timeout()) ||
		isErrno(err, syscall.ECONNREFUSED)
}
