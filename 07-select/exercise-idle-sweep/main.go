// Exercise 07-select/exercise-idle-sweep: close clients that have been
// silent for -idle-timeout, in the poll loop itself, with one ordered
// list instead of one timer per connection.
//
// This file is the part you do not write: flags and the client record
// (the error messages are in errors.go). The loop is in loop_unix.go;
// your part, the sweeper that knows whose deadline comes next, is in
// starter.go.
//
// Run it:
//
//	go run ./07-select/exercise-idle-sweep -idle-timeout 5s   # server, on 127.0.0.1:9007
//	nc 127.0.0.1 9007                                        # say nothing for 5s
package main

import (
	"container/list"
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

const (
	greeting    = "welcome to exercise-idle-sweep: every message you send comes back after OK...\n"
	marker      = "OK..."
	chunkSize   = 4096     // one read, as in the lesson
	maxBuffered = 64 << 10 // stop reading a client whose replies pile up
)

// config is the server's command line, plus a hook for the tests.
type config struct {
	addr string
	idle time.Duration
	// onWait, when set, is called each time the loop is about to
	// sleep in poll, with how long it may sleep (negative: for ever).
	// Tests count the wake-ups with it.
	onWait func(timeout time.Duration)
}

// conn is everything the loop knows about one client.
type conn struct {
	fd      int
	peer    string
	out     []byte // replies the kernel has not taken yet
	eof     bool   // the client has finished sending
	closing bool   // told "bye": close once out is written
	// elem is yours: a sweeper built on container/list can keep the
	// client's place in its list here. The loop never touches it.
	elem *list.Element
}

// run is the whole program. Tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("exercise-idle-sweep", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var cfg config
	flags.StringVar(&cfg.addr, "addr", "127.0.0.1:9007", "`host:port` to listen on (port 0 picks a free port)")
	flags.DurationVar(&cfg.idle, "idle-timeout", 2*time.Minute, "close a client that sends nothing (and reads nothing) for this long")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	problem := ""
	switch {
	case flags.NArg() > 0:
		problem = fmt.Sprintf("unexpected argument %q", flags.Arg(0))
	case cfg.idle <= 0:
		problem = "-idle-timeout must be positive"
	}
	if problem != "" {
		fmt.Fprintln(stderr, problem)
		flags.Usage()
		return errUsage
	}
	if err := checkHostPort(cfg.addr); err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	return serve(ctx, cfg, stdout)
}
