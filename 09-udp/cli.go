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

// run is the whole program. Tests call it directly with their own
// arguments and output, and cancel ctx instead of pressing Ctrl+C.
// The program reads nothing from stdin: a request is one empty datagram.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runWithClock(ctx, time.Now, args, stdout, stderr)
}

// runWithClock is run with the clock as a parameter, so tests can set
// the time to any moment, such as the second the 32-bit count wraps.
func runWithClock(ctx context.Context, now func() time.Time, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("09-udp", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9009", "`host:port` to listen on (port 0 picks a free port), or to ask with -client")
	client := flags.Bool("client", false, "ask the server at -addr for the time and print it")
	rfc868 := flags.Bool("rfc868", false, "count seconds from 1900 as RFC 868 does (what rdate expects), not from 1970")
	timeout := flags.Duration("timeout", 500*time.Millisecond, "client: how long to wait for the first reply; each retry waits twice as long")
	retries := flags.Int("retries", 3, "client: how many times to send again when no reply comes")
	size := flags.Int("size", 0, "client: send this many zero bytes instead of an empty datagram")
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
	if *timeout <= 0 || *retries < 0 || *size < 0 {
		fmt.Fprintln(stderr, "-timeout must be positive; -retries and -size must not be negative")
		flags.Usage()
		return errUsage
	}

	if err := checkHostPort(*addr); err != nil {
		if *client {
			return fmt.Errorf("resolve %s: %w", *addr, err)
		}
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	if *client {
		ask := request{
			addr:    *addr,
			rfc868:  *rfc868,
			timeout: *timeout,
			retries: *retries,
			size:    *size,
		}
		return runClient(ctx, ask, now, stdout, stderr)
	}
	// The server's log goes through a queue, so a stdout nobody reads
	// costs log lines, never answers; at the end it gets flushLimit to
	// drain, so Ctrl+C stops the server even then.
	log := newLogQueue(stdout, logQueueLines)
	defer log.Close(flushLimit)
	return serve(ctx, *addr, *rfc868, now, log)
}

// flushLimit is how long a stopping server waits for its log to be
// written out.
const flushLimit = time.Second
