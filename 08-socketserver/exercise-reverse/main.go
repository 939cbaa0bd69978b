// Exercise 08-socketserver/exercise-reverse: add a handler to the
// lesson's server. The server stays as it is; a new protocol is one
// function, and one line that gives it a name behind -handler.
//
// This file is the part you do not write: flags, a small copy of the
// lesson's Server, line reading and the upper handler (the error
// messages are in errors.go). Your part is in starter.go: reverse, and
// registering it.
//
// Run it:
//
//	go run ./08-socketserver/exercise-reverse -handler reverse
//	nc 127.0.0.1 9008                      # type a line, get it reversed
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
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

// run is the whole program: a server that speaks the chosen handler.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	handlers := map[string]Handler{"upper": HandlerFunc(upper)}
	registerHandlers(handlers)

	flags := flag.NewFlagSet("exercise-reverse", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9008", "`host:port` to listen on (port 0 picks a free port)")
	handler := flags.String("handler", "upper", "the protocol: one of "+names(handlers))
	idle := flags.Duration("idle-timeout", 2*time.Minute, "close a client that sends or reads nothing for this long")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	h, ok := handlers[*handler]
	if flags.NArg() > 0 || *idle <= 0 || !ok {
		fmt.Fprintf(stderr, "-handler must be one of %s; no arguments; -idle-timeout must be positive\n", names(handlers))
		flags.Usage()
		return errUsage
	}

	if err := checkHostPort(*addr); err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &Server{Handler: h, IdleTimeout: *idle, Log: stdout}
	srv.logf("listening on %s", ln.Addr())
	if err := srv.Serve(ctx, ln); err != nil {
		// The listener broke for good: exit non-zero, so that a
		// supervisor that restarts failed services restarts this one.
		return err
	}
	srv.logf("stopped")
	return nil
}

// names lists the registered handlers, sorted, for -h and errors.
func names(handlers map[string]Handler) string {
	var list []string
	for name := range handlers {
		list = append(list, name)
	}
	sort.Strings(list)
	return strings.Join(list, ", ")
}

// ---- a small copy of the lesson's Server ----

// A Handler talks to one client; the server closes the connection when
// Handle returns.
type Handler interface {
	Handle(conn net.Conn)
}

// HandlerFunc lets an ordinary function be a Handler.
type HandlerFunc func(conn net.Conn)

// Handle calls f(conn).
func (f HandlerFunc) Handle(conn net.Conn) { f(conn) }

// Server gives every client its own goroutine running Handler. It is
// the lesson's ThreadingTCPServer without the connection limit.
type Server struct {
	Handler     Handler
	IdleTimeout time.Duration
	Log         io.Writer

	mu sync.Mutex // one log line at a time
}

// Serve accepts on ln until ctx ends, then closes every connection and
// waits for the handlers to return. It returns nil after ctx ends, and an
// error only if the listener is closed under it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()
	defer ln.Close()
	var handlers sync.WaitGroup
	defer handlers.Wait()
	failures := 0 // Accept errors in a row, for the back-off below
	for {
		conn, err := ln.Accept()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil // Ctrl+C closed the listener
			case errors.Is(err, net.ErrClosed):
				return fmt.Errorf("accept: %w", err)
			}
			// Any other failure is passing: above all "too many open
			// files" (EMFILE). The client stays in the backlog, so an
			// immediate retry fails again and the loop would spin:
			// wait longer after each failure, up to a second, and log
			// only the first of a streak. The lesson does the same.
			failures++
			if failures == 1 {
				s.logf("accept failed, retrying with back-off: %s", explain(err))
			}
			pause := time.NewTimer(min(5*time.Millisecond<<min(failures-1, 8), time.Second))
			select {
			case <-pause.C:
			case <-ctx.Done():
				pause.Stop()
			}
			continue
		}
		if failures > 0 {
			s.logf("accepting again after %d failed attempts", failures)
			failures = 0
		}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			stopConn := context.AfterFunc(ctx, func() { conn.Close() })
			defer stopConn()
			s.logf("client %s connected", conn.RemoteAddr())
			s.Handler.Handle(&idleConn{Conn: conn, idle: s.IdleTimeout})
			closeGracefully(conn)
			s.logf("client %s left", conn.RemoteAddr())
		}()
	}
}

func (s *Server) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.Log, format+"\n", args...)
}

// idleConn gives every Read and Write a fresh deadline, so a silent
// client is closed after the idle timeout.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(p)
}

// closeGracefully ends a connection with a FIN rather than a reset.
func closeGracefully(conn net.Conn) {
	if tcp, ok := conn.(interface{ CloseWrite() error }); ok {
		tcp.CloseWrite()
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	}
	conn.Close()
}

// ---- line framing, as in the lesson ----

// maxLine is the longest line a client may send, newline included.
const maxLine = 4096

var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLine)

// readLine returns the next line without its "\n" or "\r\n". A last
// line without a newline counts too. A line that does not fit in r's
// buffer is an error, not a bigger buffer.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case err == nil:
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, errLineTooLong
	case errors.Is(err, io.EOF) && len(line) > 0:
	default:
		return nil, err
	}
	return line, nil
}

// upper answers every line in upper case: the lesson's default handler.
func upper(conn net.Conn) {
	lines := bufio.NewReaderSize(conn, maxLine)
	for {
		line, err := readLine(lines)
		if errors.Is(err, errLineTooLong) {
			fmt.Fprintf(conn, "error: %v, closing\n", err)
			return
		}
		if err != nil {
			return
		}
		if _, err := conn.Write(append(upperASCII(line), '\n')); err != nil {
			return
		}
	}
}

// upperASCII upper-cases the ASCII letters and passes every other byte
// through, as the lesson's upper does (and Python's bytes.upper()). The
// answer is exactly as long as the line. (bytes.ToUpper would turn each
// byte that is not UTF-8 into the 3-byte U+FFFD, and some letters into
// longer ones: a line of 0xFF bytes would come back three times its
// size.)
func upperASCII(line []byte) []byte {
	out := make([]byte, len(line), len(line)+1)
	for i, b := range line {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		out[i] = b
	}
	return out
}
