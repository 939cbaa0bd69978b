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

// config holds the limits that keep one bad client from hurting the rest.
type config struct {
	idle  time.Duration // how long a client may stay silent, or leave replies unread
	turn  time.Duration // how long one client may be served while others wait; 0: no limit
	grace time.Duration // how long shutdown may spend on the client being served
}

// run is the whole program. Tests call it directly with their own
// arguments, input and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("05-loop", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9005", "`host:port` to listen on (port 0 picks a free port), or to connect to with -client")
	client := flags.Bool("client", false, "connect to -addr, send each line of standard input and print the replies")
	var cfg config
	flags.DurationVar(&cfg.idle, "idle-timeout", 2*time.Minute, "close a client that sends nothing, or reads nothing, for this long")
	flags.DurationVar(&cfg.turn, "max-turn", time.Minute, "serve one client for at most this long, then close it so the next in the queue gets its turn (0: no limit)")
	flags.DurationVar(&cfg.grace, "grace", 5*time.Second, "on Ctrl+C, how long to spend saying goodbye to the client being served")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	var problem string
	switch {
	case flags.NArg() > 0:
		problem = fmt.Sprintf("unexpected argument %q", flags.Arg(0))
	case cfg.idle <= 0:
		problem = "-idle-timeout must be more than 0"
	case cfg.turn < 0:
		problem = "-max-turn must not be negative"
	case cfg.grace < 0:
		problem = "-grace must not be negative"
	}
	if problem != "" {
		fmt.Fprintln(stderr, problem)
		flags.Usage()
		return errUsage
	}

	if err := checkHostPort(*addr); err != nil {
		if *client {
			return fmt.Errorf("connect to %s: %w", *addr, err)
		}
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	if *client {
		return runClient(ctx, *addr, cfg.idle, stdin, stdout, stderr)
	}
	return serveLogged(ctx, *addr, cfg, stdout)
}

// serveLogged runs serve with its log going through a logQueue, so that
// a stdout nobody reads never stops the server. When serve returns, what
// is still queued is written, but for no longer than the stop's own
// -grace: Ctrl+C still stops the server in time when stdout is stuck.
func serveLogged(ctx context.Context, addr string, cfg config, stdout io.Writer) error {
	log := newLogQueue(stdout)
	stopped := make(chan time.Time, 1)
	stopWatch := context.AfterFunc(ctx, func() { stopped <- time.Now() })
	defer stopWatch()

	err := serve(ctx, addr, cfg, log)

	deadline := time.Now().Add(cfg.grace)
	select {
	case at := <-stopped:
		deadline = at.Add(cfg.grace)
	default:
	}
	// A stdout that keeps up needs microseconds; give it those even with
	// -grace 0, so the last line ("stopped") is never lost to a race.
	if floor := time.Now().Add(lastLogLines); deadline.Before(floor) {
		deadline = floor
	}
	log.close(deadline)
	return err
}

// lastLogLines is the least time the log gets to write its last lines.
const lastLogLines = 100 * time.Millisecond
