// The command line of 01-create: flags, signals and the exit code.

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
		fmt.Fprintln(os.Stderr, "error:", explain(err))
		os.Exit(1)
	}
}

// errUsage marks a bad command line; the flag package already said why.
var errUsage = errors.New("bad command line")

// run is the whole program. Tests call it directly with their own
// arguments and output. It reads no input and needs no network: every
// socket it makes stays on this machine.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("01-create", flag.ContinueOnError)
	flags.SetOutput(stderr)
	rcvbuf := flags.Int("rcvbuf", 8192, "receive buffer size in `bytes` to ask for with SO_RCVBUF")
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
	if *rcvbuf < 1 || *rcvbuf > 1<<30 {
		fmt.Fprintf(stderr, "-rcvbuf must be between 1 and %d\n", 1<<30)
		flags.Usage()
		return errUsage
	}

	// Step 1 creates one socket of each kind; they stay open until run
	// returns, so steps 2 and 3 can use the TCP and UDP ones.
	opened, err := createEach(stdout)
	defer func() {
		for _, s := range opened {
			closeSocket(s)
		}
	}()
	if err != nil {
		return err
	}
	tcp, udp := opened[0], opened[1]
	readOptions(stdout, tcp)
	setOptions(stdout, tcp, udp, *rcvbuf)
	showFailures(stdout)
	return theGoWay(ctx, stdout, *rcvbuf)
}
