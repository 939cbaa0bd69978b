// Exercise: set an option before connect, read options after.
//
// Lesson 01 set SO_RCVBUF on a listener through ListenConfig.Control and
// read options back through SyscallConn. This exercise does the same on
// the client side: net.Dialer has a Control function too, called after
// socket() and before connect(). The part you write is in starter.go;
// this file wires the command line, and sockopt_*.go hold the system
// calls of each platform.
//
// Run it:
//
//	go run ./01-create/exercise-dial-options -rcvbuf 8192
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
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// errUsage marks a bad command line; the flag package already said why.
var errUsage = errors.New("bad command line")

// run listens on a free loopback port, connects to it with
// dialWithRcvBuf, and prints three options of the connection.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("dial-options", flag.ContinueOnError)
	flags.SetOutput(stderr)
	rcvbuf := flags.Int("rcvbuf", 8192, "receive buffer size in `bytes` to ask for before connect")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if flags.NArg() > 0 || *rcvbuf < 1 || *rcvbuf > 1<<30 {
		fmt.Fprintf(stderr, "-rcvbuf must be between 1 and %d, and no arguments\n", 1<<30)
		flags.Usage()
		return errUsage
	}

	// The connection waits in the listener's queue: no Accept needed.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	conn, err := dialWithRcvBuf(ctx, stdout, ln.Addr().String(), *rcvbuf)
	if err != nil {
		return err
	}
	defer conn.Close()

	sc, ok := conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("a %T has no socket to read options from", conn)
	}
	for _, o := range []struct {
		name       string
		level, opt int
	}{
		{"SO_RCVBUF", solSocket, soRcvBuf},
		{"SO_KEEPALIVE", solSocket, soKeepAlive},
		{"TCP_NODELAY", ipprotoTCP, tcpNoDelay},
	} {
		v, err := readOption(sc, o.level, o.opt)
		if err != nil {
			return fmt.Errorf("read %s: %w", o.name, err)
		}
		fmt.Fprintf(stdout, "%-12s %d\n", o.name, v)
	}
	return nil
}
