// Exercise: a port scanner for this machine only.
//
// A connect loop is a port scanner: try to connect to each port, and
// the answer says whether something listens there. This program does
// that for the loopback address only, because scanning machines that
// are not yours is, in many places, an offence. The part you write is
// in starter.go; this file wires the command line and holds what is not
// the exercise.
//
// Run it:
//
//	go run ./02-connect/exercise-portscan -ports 8000-8100
//	go run ./02-connect/exercise-portscan -host ::1 -ports 22,80,443
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
	"strings"
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

// run is the whole program: it parses the flags, scans, and prints the
// open ports and a summary.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("portscan", flag.ContinueOnError)
	flags.SetOutput(stderr)
	host := flags.String("host", "127.0.0.1", "loopback `address` to scan: 127.0.0.1, another 127.x.y.z, or ::1")
	portList := flags.String("ports", "1-1024", "`ports` to try, such as 22,80,8000-8100")
	timeout := flags.Duration("timeout", 500*time.Millisecond, "how long to wait for each port")
	workers := flags.Int("workers", 50, "how many ports to try at once (1 to 1000)")
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
	ports, err := parsePorts(*portList)
	if err != nil {
		fmt.Fprintf(stderr, "invalid -ports %q: %v\n", *portList, err)
		return errUsage
	}
	if *timeout <= 0 || *workers < 1 || *workers > 1000 {
		fmt.Fprintln(stderr, "-timeout must be positive and -workers between 1 and 1000")
		return errUsage
	}

	s := Scanner{Timeout: *timeout, Workers: *workers}
	results, err := s.Scan(ctx, *host, ports)
	if err != nil {
		return err
	}
	count := map[State]int{}
	for _, r := range results {
		count[r.State]++
		switch r.State {
		case Open:
			fmt.Fprintf(stdout, "%d open\n", r.Port)
		case Failed:
			fmt.Fprintf(stdout, "%d failed: %v\n", r.Port, r.Err)
		}
	}
	fmt.Fprintf(stdout, "%d ports scanned: %d open, %d closed, %d filtered, %d failed\n",
		len(results), count[Open], count[Closed], count[Filtered], count[Failed])
	return nil
}

// Scanner tries ports on one loopback address. Scan is in starter.go
// (your work) and solution.go (the reference).
type Scanner struct {
	// Timeout bounds each connect attempt on its own.
	Timeout time.Duration
	// Workers is how many connect attempts may be under way at once.
	Workers int
	// Dial connects; nil means a plain net.Dialer. Tests put their own
	// here to count and observe the attempts.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Result is what one port answered.
type Result struct {
	Port  int
	State State
	Err   error // the connect error, for every state but Open
}

// State is the verdict on one port.
type State int

const (
	// Open: the connect succeeded, so something listens there.
	Open State = iota + 1
	// Closed: the machine refused at once; nothing listens there.
	Closed
	// Filtered: no answer within the timeout.
	Filtered
	// Failed: another error, or the scan was interrupted.
	Failed
)

func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case Closed:
		return "closed"
	case Filtered:
		return "filtered"
	case Failed:
		return "failed"
	}
	return "unknown"
}

var (
	// errNotLoopback is the refusal: this scanner only looks at the
	// machine it runs on.
	errNotLoopback = errors.New("refusing to scan: not a loopback address")
	// errBadPort is a port outside 1 to 65535.
	errBadPort = errors.New("port out of range")
	// errBadScanner is a Scanner without a usable Timeout or Workers.
	errBadScanner = errors.New("scanner needs Timeout > 0 and Workers >= 1")
)

// classify turns the error of one connect attempt into a verdict.
func classify(err error) State {
	var netErr net.Error
	switch {
	case err == nil:
		return Open
	case isErrno(err, syscall.ECONNREFUSED):
		return Closed
	case errors.Is(err, context.Canceled):
		return Failed
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout()):
		return Filtered
	}
	return Failed
}

// parsePorts reads "22,80,8000-8100" into a list of port numbers.
func parsePorts(s string) ([]int, error) {
	var ports []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		first, err1 := strconv.Atoi(strings.TrimSpace(lo))
		last, err2 := strconv.Atoi(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
			return nil, fmt.Errorf("%q: want a port from 1 to 65535, or a range such as 8000-8100", part)
		}
		for p := first; p <= last; p++ {
			ports = append(ports, p)
		}
	}
	return ports, nil
}
