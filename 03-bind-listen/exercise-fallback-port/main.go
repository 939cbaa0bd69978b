// Exercise: when the port is taken, take the next free one.
//
// Lesson 03 met "address already in use" and stopped there. Development
// servers often do better: they try the next port, and the next, and
// say where they ended up. The part you write, listenFallback and
// isAddrInUse, is in starter.go; this file wires the command line.
//
// Run it:
//
//	go run ./03-bind-listen/exercise-fallback-port                    # 127.0.0.1:9003, or the next free port
//	go run ./03-bind-listen/exercise-fallback-port -addr 127.0.0.1:0  # any free port
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
	"strconv"
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

// run listens on -addr or one of the -tries ports after it, prints
// where, and waits for Ctrl+C, like lesson 03.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("fallback-port", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9003", "`host:port` to try first (port 0 picks any free port)")
	tries := flags.Int("tries", 10, "how many ports to try, counting up from the first")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	host, portText, err := net.SplitHostPort(*addr)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil || flags.NArg() > 0 {
		fmt.Fprintf(stderr, "invalid -addr %q: want host:port, such as 127.0.0.1:9003\n", *addr)
		flags.Usage()
		return errUsage
	}

	ln, err := listenFallback(stderr, host, port, *tries)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	<-ctx.Done()
	return nil
}

var (
	// errAllInUse: every port that was tried is taken.
	errAllInUse = errors.New("every port tried is in use")
	// errBadRange: a first port or a number of tries that make no sense.
	errBadRange = errors.New("want a port from 0 to 65535 and tries >= 1, ending at 65535 at most")
)
