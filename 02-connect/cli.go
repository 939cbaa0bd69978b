// The command line of 02-connect: flags, signals and the exit code.

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
	flags := flag.NewFlagSet("02-connect", flag.ContinueOnError)
	flags.SetOutput(stderr)
	host := flags.String("host", "example.com", "host `name` or IP address of the web server")
	port := flags.String("port", "80", "TCP `port` of the web server: a number, or a service name such as http")
	timeout := flags.Duration("timeout", 5*time.Second, "how long to wait for each step: resolving, each connect attempt, the reply")
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
	portNum, err := parsePort(*port)
	if err != nil {
		fmt.Fprintf(stderr, "invalid -port %q: %v\n", *port, err)
		return errUsage
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "invalid -timeout %v: want a positive duration such as 5s\n", *timeout)
		return errUsage
	}
	return fetchHead(ctx, *host, portNum, *timeout, stdout)
}

// parsePort turns the -port flag into a port number. A port is a number
// from 1 to 65535, or the name of a service such as "http" or "https",
// which net.LookupPort finds in the system's list of services (or in
// Go's own short list where the system has none).
func parsePort(s string) (int, error) {
	port, err := net.LookupPort("tcp", s)
	if err != nil || port == 0 {
		return 0, errors.New("want a number from 1 to 65535, or a service name such as http")
	}
	return port, nil
}
