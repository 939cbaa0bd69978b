// The command line of 06-goroutines: flags, signals and the exit code.

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// main only wires the process: flags come from os.Args, Ctrl+C and
// SIGTERM cancel ctx, and an error becomes one line on stderr.
//
// A server stopped by Ctrl+C returns nil here and exits 0. Under `go run`
// the terminal still shows "exit status 1": that is the go command, which
// was interrupted too, not this program. Build it (go build) to see its
// own exit code.
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

// defaultPort is the lesson's port: 9000 plus the lesson's number.
const defaultPort = "9006"

// run is the whole program. Tests call it directly with their own
// arguments, input and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("06-goroutines", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:"+defaultPort, "`host:port` to listen on (port 0 picks a free port), or to connect to with -client")
	client := flags.Bool("client", false, "connect to -addr, send each line of standard input and print the replies")
	maxConns := flags.Int("max-conns", 1000, "how many clients are served at once; more wait in the backlog")
	maxPerIP := flags.Int("max-conns-per-ip", 100, "how many of those may come from one IP address (0: no limit); more are told so and closed")
	idle := flags.Duration("idle-timeout", 2*time.Minute, "close a client that sends nothing (or reads nothing) for this long")
	grace := flags.Duration("grace", 5*time.Second, "on shutdown, how long to wait for clients to finish before closing them")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	switch {
	case flags.NArg() > 0:
		fmt.Fprintf(stderr, "unexpected argument %q\n", flags.Arg(0))
	case *maxConns < 1:
		fmt.Fprintln(stderr, "-max-conns must be at least 1")
	case *maxPerIP < 0:
		fmt.Fprintln(stderr, "-max-conns-per-ip must not be negative")
	case *idle <= 0:
		fmt.Fprintln(stderr, "-idle-timeout must be positive")
	case *grace < 0:
		fmt.Fprintln(stderr, "-grace must not be negative")
	case *client:
		if err := checkHostPort(*addr); err != nil {
			return fmt.Errorf("connect to %s: %w", *addr, err)
		}
		return runClient(ctx, *addr, *idle, stdin, stdout, stderr)
	default:
		if err := checkHostPort(*addr); err != nil {
			return fmt.Errorf("listen on %s: %w", *addr, err)
		}
		srv := &server{
			idle:     *idle,
			grace:    *grace,
			maxPerIP: *maxPerIP,
			stdout:   stdout,
			conns:    make(map[*net.TCPConn]struct{}),
			perIP:    make(map[netip.Addr]int),
		}
		return srv.serve(ctx, *addr, *maxConns)
	}
	flags.Usage()
	return errUsage
}
