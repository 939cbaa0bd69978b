// Exercise 07-select/exercise-backpressure: a poll(2) loop that buffers
// what the kernel cannot take yet, and stops reading a client that
// does not read its replies.
//
// This file is the part you do not write: flags and the flood client
// (the error messages are in errors.go). The loop itself is in
// loop_unix.go; your part, the client's output buffer, is in starter.go.
//
// Run it:
//
//	go run ./07-select/exercise-backpressure                 # server, on 127.0.0.1:9007
//	go run ./07-select/exercise-backpressure -flood 4000000  # a client that reads late
package main

import (
	"bytes"
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
	greeting  = "welcome to exercise-backpressure: every message you send comes back after OK...\n"
	marker    = "OK..."
	chunkSize = 4096 // one read, as in the lesson
)

// config is the server's command line, plus a hook for the tests.
type config struct {
	addr        string
	maxBuffered int
	// observe, when set, is called each time the loop has dealt with
	// a client: how many reply bytes wait in its buffer, and whether
	// the loop still reads it. Tests watch the bound with it.
	observe func(peer string, buffered int, reading bool)
}

// run is the whole program. Tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("exercise-backpressure", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var cfg config
	flags.StringVar(&cfg.addr, "addr", "127.0.0.1:9007", "`host:port` to listen on (port 0 picks a free port), or to connect to with -flood")
	flags.IntVar(&cfg.maxBuffered, "max-buffered", 64<<10, "at most this many reply `bytes` wait for a client that does not read")
	flood := flags.Int("flood", 0, "be a client: send `N` bytes without reading, then read every reply")
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
	case cfg.maxBuffered < len(marker)+chunkSize:
		problem = fmt.Sprintf("-max-buffered must hold one reply: at least %d bytes", len(marker)+chunkSize)
	case *flood < 0:
		problem = "-flood must not be negative"
	}
	if problem != "" {
		fmt.Fprintln(stderr, problem)
		flags.Usage()
		return errUsage
	}
	if err := checkHostPort(cfg.addr); err != nil {
		if *flood > 0 {
			return fmt.Errorf("connect to %s: %w", cfg.addr, err)
		}
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	if *flood > 0 {
		return floodClient(ctx, cfg.addr, *flood, stdout)
	}
	return serve(ctx, cfg, stdout)
}

// floodClient is the client the server must survive: it sends n bytes
// as fast as it can without reading a reply, and only starts reading
// when its writes stall (the server no longer takes them) or when all
// is sent. Then it checks that every byte came back, in order. It uses
// the net package only, so it builds on Windows too.
func floodClient(ctx context.Context, addr string, n int, stdout io.Writer) error {
	dialer := net.Dialer{Timeout: 5 * time.Second}
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	conn := c.(*net.TCPConn)
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	payload := floodPayload(n)
	stalled := make(chan struct{}) // closed when writes stall or end
	wrote := make(chan error, 1)
	go func() {
		wrote <- writeFlood(conn, payload, stalled)
	}()

	// Read everything, but only once the writer is stuck or done.
	select {
	case <-stalled:
	case <-ctx.Done():
		conn.Close() // ends the writer too
		<-wrote
		return nil
	}
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	got, readErr := io.ReadAll(conn)
	if err := <-wrote; err != nil && ctx.Err() == nil {
		return fmt.Errorf("send to %s: %w", addr, err)
	}
	if ctx.Err() != nil {
		return nil
	}
	if readErr != nil {
		return fmt.Errorf("read from %s: %w", addr, readErr)
	}
	back := payloadOf(got)
	switch same := commonPrefix(back, payload); {
	case same == n && len(back) == n:
		fmt.Fprintf(stdout, "sent %d bytes; all %d came back, in order\n", n, n)
	case same == len(back):
		fmt.Fprintf(stdout, "sent %d bytes; only %d came back: the rest of the replies were lost\n", n, len(back))
	default:
		fmt.Fprintf(stdout, "sent %d bytes; %d came back, and they differ from byte %d on\n", n, len(back), same)
	}
	return nil
}

// writeFlood sends payload, then half-closes the connection so the
// server sees the end. It closes stalled when one write has waited a
// second (the server stopped taking bytes) or when all is
// sent, whichever comes first.
func writeFlood(conn *net.TCPConn, payload []byte, stalled chan struct{}) error {
	signalled := false
	stall := func() {
		if !signalled {
			signalled = true
			close(stalled)
		}
	}
	defer stall()
	for len(payload) > 0 {
		wait := time.Second
		if signalled {
			wait = 30 * time.Second // we read now: the server will move
		}
		if err := conn.SetWriteDeadline(time.Now().Add(wait)); err != nil {
			return err
		}
		n, err := conn.Write(payload)
		payload = payload[n:]
		if isTimeout(err) && !signalled {
			stall()
			continue
		}
		if err != nil {
			return err
		}
	}
	return conn.CloseWrite()
}

// floodLine is what a flood repeats: lowercase letters, digits and a
// newline never spell "OK...", so the markers can be told apart.
const floodLine = "abcdefghijklmnopqrstuvwxyz0123456789\n"

// floodPayload is the first n bytes of a flood.
func floodPayload(n int) []byte {
	b := make([]byte, 0, n+len(floodLine))
	for len(b) < n {
		b = append(b, floodLine...)
	}
	return b[:n]
}

// payloadOf strips the greeting and every "OK..." marker from what the
// server sent, leaving the bytes it echoed.
func payloadOf(stream []byte) []byte {
	stream = bytes.TrimPrefix(stream, []byte(greeting))
	return bytes.ReplaceAll(stream, []byte(marker), nil)
}

// commonPrefix is how many bytes at the start of a and b agree. It
// compares 4 KiB at a time, and byte by byte only where they differ.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i+4096 <= n && bytes.Equal(a[i:i+4096], b[i:i+4096]) {
		i += 4096
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}
