// Lesson 08-socketserver: a small reusable server, and two protocols.
//
// Python's socketserver module splits a server in two: the server owns
// the listening socket and the accept loop, a handler class owns one
// conversation. This lesson builds the same split in Go, in the manner
// of net/http: a Server that accepts, a Handler that talks.
//
// Two handlers ship with it. "upper" answers every line in upper case.
// "cmd" is the articles' mini "ssh" made safe: it runs only a few
// harmless programs, never through a shell, and frames every reply with
// a 4-byte length so the client knows where each reply ends.
//
// The files, in reading order: server.go (the Server and the Handler
// interface), framing.go (lines, frames and the upper handler), cmd.go
// (the command service), client.go (-client), and this file, cli.go
// (flags, Ctrl+C and the shutdown). The ladder in steps/ builds the
// same program one fix at a time.
//
// Run it:
//
//	go run ./08-socketserver                     # upper, on 127.0.0.1:9008
//	go run ./08-socketserver -client             # in a second terminal
//	go run ./08-socketserver -handler cmd        # the command service
//	go run ./08-socketserver -handler cmd -client
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
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

// defaultPort is this lesson's port: 9000 + its number.
const defaultPort = "9008"

// errUsage marks a bad command line; the flag package already said why.
var errUsage = errors.New("bad command line")

// run is the whole program. Tests call it directly with their own
// arguments, input and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("08-socketserver", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:"+defaultPort, "`host:port` to listen on (port 0 picks a free port), or to connect to with -client")
	client := flags.Bool("client", false, "connect to -addr, send each line of standard input and print each reply")
	handler := flags.String("handler", "upper", "the protocol: `upper` (lines in upper case) or cmd (run an allowed command)")
	sequential := flags.Bool("sequential", false, "serve one client at a time, like Python's TCPServer")
	maxConns := flags.Int("max-conns", 1000, "most clients served at once; more wait in the backlog")
	maxPerIP := flags.Int("max-conns-per-ip", 100, "most clients served at once from one IP address; 0 means no limit (-sequential serves one anyway)")
	idle := flags.Duration("idle-timeout", 2*time.Minute, "close a client that sends nothing (or reads nothing) for this long")
	message := flags.Duration("message-timeout", 30*time.Second, "close a client whose line takes longer than this to arrive, from its first byte")
	maxPrograms := flags.Int("max-programs", 8, "with -handler cmd: most programs running at once; past it, a command is answered \"busy\"")
	grace := flags.Duration("grace", 5*time.Second, "on shutdown, how long to wait for clients to finish")
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
	if *maxConns < 1 || *idle <= 0 || *grace < 0 {
		fmt.Fprintln(stderr, "-max-conns and -idle-timeout must be positive, -grace not negative")
		return errUsage
	}
	if *maxPerIP < 0 || *message <= 0 || *maxPrograms < 1 {
		fmt.Fprintln(stderr, "-message-timeout and -max-programs must be positive, -max-conns-per-ip not negative")
		return errUsage
	}
	if *handler != "upper" && *handler != "cmd" {
		fmt.Fprintf(stderr, "-handler must be upper or cmd, not %q\n", *handler)
		return errUsage
	}

	if *client {
		if err := checkHostPort(*addr); err != nil {
			return fmt.Errorf("connect to %s: %w", *addr, err)
		}
		return runClient(ctx, *addr, *handler, *idle, stdin, stdout, stderr)
	}
	if err := checkHostPort(*addr); err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}

	// The log goes through a queue: a stdout nobody reads costs log
	// lines, never service.
	logs := newLogQueue(stdout)
	logger := log.New(logs, "", 0)
	srv := &Server{
		Addr:           *addr,
		Handler:        HandlerFunc(upper),
		Sequential:     *sequential,
		MaxConns:       *maxConns,
		MaxConnsPerIP:  *maxPerIP,
		IdleTimeout:    *idle,
		MessageTimeout: *message,
		Log:            logger,
	}
	if *handler == "cmd" {
		srv.Handler = newCmdHandler(runProgram, cmdTimeout, *maxPrograms, logger)
		if !isLoopback(*addr) {
			fmt.Fprintf(stderr, "warning: -handler cmd on %s lets anyone who can reach this port run commands on this machine\n", *addr)
		}
	}
	return serveUntilDone(ctx, srv, *grace, logs)
}

// serveUntilDone runs srv until ctx is cancelled, then shuts it down,
// giving the handlers up to grace to finish their conversations. Then
// it writes out what is left of the log, within the same grace.
func serveUntilDone(ctx context.Context, srv *Server, grace time.Duration, logs *logQueue) error {
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	select {
	case err := <-served:
		// Listen failed, or Accept failed in a way retrying cannot fix.
		srv.Close()
		logs.close(time.Now().Add(max(grace, lastLogLines)))
		return err
	case <-ctx.Done():
	}

	srv.logf("shutting down")
	end := time.Now().Add(grace)
	deadline, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	if err := srv.Shutdown(deadline); err != nil {
		srv.logf("grace period of %v over: closed the remaining connections", grace)
	}
	<-served
	srv.logf("stopped")
	// A stdout that keeps up needs microseconds: give it those even when
	// the grace is spent, so "stopped" is never lost to a race.
	logs.close(later(end, time.Now().Add(lastLogLines)))
	return nil
}

// lastLogLines is the least time the log gets to write its last lines.
const lastLogLines = 100 * time.Millisecond

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// isLoopback reports whether addr names this machine only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}
