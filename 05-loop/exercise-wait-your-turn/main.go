// Exercise 05-loop/exercise-wait-your-turn: a client that measures what
// the lesson's server cannot see, how long a client waits in the queue.
//
// This file is the part you do not write: flags and the error messages.
// Your part is waitTurn, in starter.go.
//
// Run it:
//
//	go run ./05-loop                          # the lesson's server
//	nc 127.0.0.1 9005                         # a client that stays
//	go run ./05-loop/exercise-wait-your-turn  # waits for its turn
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
	flags := flag.NewFlagSet("exercise-wait-your-turn", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9005", "`host:port` of the server to wait for")
	timeout := flags.Duration("timeout", 2*time.Minute, "how long to wait to connect, and then for the greeting")
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
	case *timeout <= 0:
		fmt.Fprintln(stderr, "-timeout must be more than 0")
		flags.Usage()
		return errUsage
	}
	return waitTurn(ctx, *addr, *timeout, stdout)
}
