package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// main only wires the process: flags come from os.Args, Ctrl+C and
// SIGTERM cancel ctx, and an error becomes one line on stderr.
//
//	go run ./07-select                         # server, on 127.0.0.1:9007
//	go run ./07-select -client                 # type lines, see replies
//	go run ./07-select -client -conns 50 -messages 1000
//	go run ./07-select -busy                   # the wrong first attempt
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

// config is the server's command line.
type config struct {
	addr        string
	maxConns    int
	maxPerIP    int
	idleTimeout time.Duration
	grace       time.Duration
	poller      string
	busy        bool
}

// loadConfig is the load generator's command line.
type loadConfig struct {
	addr     string
	conns    int
	messages int
	size     int
	timeout  time.Duration
	poller   string
	// duration, when not 0, replaces messages: every connection makes
	// round trips for this long once all of them have been greeted.
	duration time.Duration
}

// run is the whole program. Tests call it directly with their own
// arguments, input and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("07-select", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var cfg config
	flags.StringVar(&cfg.addr, "addr", "127.0.0.1:9007", "`host:port` to listen on (port 0 picks a free port), or to connect to with -client")
	client := flags.Bool("client", false, "connect to -addr and send each line of standard input")
	conns := flags.Int("conns", 0, "with -client: open `N` connections at once and measure (load generator)")
	messages := flags.Int("messages", 100, "with -conns: request/reply round trips per connection")
	size := flags.Int("size", 64, "with -conns: bytes per message")
	duration := flags.Duration("duration", 0, "with -conns: instead of -messages, greet every connection, print \"steady conns=N\", then make round trips on all of them for this long and time only those (0: use -messages)")
	flags.IntVar(&cfg.maxConns, "max-conns", 1000, "serve at most `N` clients at once; the rest wait in the backlog")
	flags.IntVar(&cfg.maxPerIP, "max-conns-per-ip", 100, "serve at most `N` clients from one IP address at once, so that one address cannot take every slot; the rest are told so and closed (0: no limit)")
	flags.DurationVar(&cfg.idleTimeout, "idle-timeout", 2*time.Minute, "close a client that sends nothing (and reads nothing) for this long")
	flags.DurationVar(&cfg.grace, "grace", 5*time.Second, "on shutdown, how long clients get to take their last replies")
	flags.StringVar(&cfg.poller, "poller", defaultPoller(), "readiness API: "+strings.Join(pollerNames(), ", "))
	flags.BoolVar(&cfg.busy, "busy", false, "the wrong first attempt: never wait, try every socket over and over")
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
	case len(pollerNames()) > 0 && !slices.Contains(pollerNames(), cfg.poller):
		problem = fmt.Sprintf("-poller %q is not available here; choose one of %s", cfg.poller, strings.Join(pollerNames(), ", "))
	case cfg.maxConns < 1:
		problem = "-max-conns must be at least 1"
	case cfg.maxPerIP < 0:
		problem = "-max-conns-per-ip must not be negative (0 means no limit)"
	case cfg.idleTimeout <= 0 || cfg.grace < 0:
		problem = "-idle-timeout must be positive and -grace not negative"
	case *conns < 0 || *messages < 1 || *size < 1:
		problem = "-conns must not be negative, -messages and -size must be at least 1"
	case *conns > 0 && !*client:
		problem = "-conns makes sense only with -client"
	case *duration < 0:
		problem = "-duration must not be negative (0: count -messages instead)"
	case *duration > 0 && *conns == 0:
		problem = "-duration makes sense only with -client -conns"
	}
	if problem != "" {
		fmt.Fprintln(stderr, problem)
		flags.Usage()
		return errUsage
	}

	if err := checkHostPort(cfg.addr); err != nil {
		if *client {
			return fmt.Errorf("connect to %s: %w", cfg.addr, err)
		}
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	switch {
	case *client && *conns > 0:
		return loadgen(ctx, loadConfig{
			addr: cfg.addr, conns: *conns, messages: *messages, size: *size,
			timeout: cfg.idleTimeout, poller: cfg.poller, duration: *duration,
		}, stdout)
	case *client:
		return runClient(ctx, cfg.addr, cfg.idleTimeout, stdin, stdout, stderr)
	}
	return serve(ctx, cfg, stdout)
}
