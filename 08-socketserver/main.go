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
// Run it:
//
//	go run ./08-socketserver                     # upper, on 127.0.0.1:9008
//	go run ./08-socketserver -client             # in a second terminal
//	go run ./08-socketserver -handler cmd        # the command service
//	go run ./08-socketserver -handler cmd -client
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
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
// arguments, input and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("08-socketserver", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9008", "`host:port` to listen on (port 0 picks a free port), or to connect to with -client")
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
		return runClient(ctx, *addr, *handler, *idle, stdin, stdout)
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

// ---- the Server: socketserver's TCPServer and ThreadingTCPServer ----

// A Handler talks to one client, like the handle method of Python's
// BaseRequestHandler. Handle returns when the conversation is over;
// the server then closes the connection.
//
// Reads on conn fail with ErrServerClosed once the server shuts down,
// and with an *IdleError when the client sent nothing for too long, so
// a handler can tell the client why it is being closed.
type Handler interface {
	Handle(conn net.Conn)
}

// HandlerFunc lets an ordinary function be a Handler, the way
// http.HandlerFunc does for web handlers.
type HandlerFunc func(conn net.Conn)

// Handle calls f(conn).
func (f HandlerFunc) Handle(conn net.Conn) { f(conn) }

// ErrServerClosed is what Serve returns after Shutdown or Close, and
// what a handler's Read returns once the server is shutting down.
var ErrServerClosed = errors.New("server closed")

// IdleError is what a handler's Read returns when the client sent
// nothing for the server's IdleTimeout.
type IdleError struct {
	After time.Duration
	Err   error
}

func (e *IdleError) Error() string { return fmt.Sprintf("idle for %v: %v", e.After, e.Err) }
func (e *IdleError) Unwrap() error { return e.Err }

// MessageTimeoutError is what a handler's Read returns when a message
// that began arriving was not complete within the server's
// MessageTimeout: a client trickling a byte at a time.
type MessageTimeoutError struct {
	Limit time.Duration
	Err   error
}

func (e *MessageTimeoutError) Error() string {
	return fmt.Sprintf("message not complete within %v: %v", e.Limit, e.Err)
}
func (e *MessageTimeoutError) Unwrap() error { return e.Err }

// A ByeWriter is a Handler that frames what it sends. The server uses
// WriteBye for the one line it sends on its own, to a client it will not
// serve, so that the line reaches the client in the handler's protocol.
// A Handler without WriteBye gets the line as it is.
type ByeWriter interface {
	WriteBye(w io.Writer, line string) error
}

// Server accepts connections and gives each to Handler. Set the fields
// before calling Serve; the zero values of the optional ones are fine.
type Server struct {
	Addr           string        // where ListenAndServe listens
	Handler        Handler       // talks to each client
	Sequential     bool          // true: one client at a time (TCPServer)
	MaxConns       int           // most clients at once when concurrent; 0 means 1000
	MaxConnsPerIP  int           // most clients at once from one IP when concurrent; 0 means no limit
	IdleTimeout    time.Duration // per read and per write; 0 means no limit
	MessageTimeout time.Duration // from a message's first byte to its last; 0 means no limit
	Log            *log.Logger   // where to report clients; nil means nowhere

	mu        sync.Mutex
	closing   bool
	done      chan struct{} // closed when Shutdown or Close begins
	listeners map[net.Listener]bool
	conns     map[net.Conn]bool
	perIP     map[string]int // clients being served, by IP address
	handlers  sync.WaitGroup
}

// NewTCPServer returns a server that serves one client at a time, like
// Python's socketserver.TCPServer.
func NewTCPServer(addr string, h Handler) *Server {
	return &Server{Addr: addr, Handler: h, Sequential: true}
}

// NewThreadingTCPServer returns a server that gives every client its own
// goroutine, like Python's socketserver.ThreadingTCPServer.
func NewThreadingTCPServer(addr string, h Handler) *Server {
	return &Server{Addr: addr, Handler: h}
}

// ListenAndServe listens on s.Addr and serves until Shutdown or Close:
// Python's serve_forever on a server created with an address.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Addr, err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown or Close, and returns
// ErrServerClosed then. It closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	if !s.trackListener(ln) {
		return ErrServerClosed
	}
	defer s.untrackListener(ln)
	s.logf("listening on %s", ln.Addr())

	// A concurrent server takes a slot before each Accept. With every
	// slot taken it stops accepting, and the kernel keeps new clients
	// waiting in the listen backlog until a slot frees up.
	var slots chan struct{}
	if !s.Sequential {
		slots = make(chan struct{}, s.maxConns())
	}
	for {
		if slots != nil {
			select {
			case slots <- struct{}{}:
			case <-s.doneChan():
				return ErrServerClosed
			}
		}
		conn, err := s.accept(ln)
		if err == nil && !s.trackConn(conn) {
			conn.Close()
			err = ErrServerClosed
		}
		if err != nil {
			return err
		}
		if s.Sequential {
			// TCPServer: the next Accept waits until this client is done.
			s.handle(conn)
			continue
		}
		// One address may not take every slot: past MaxConnsPerIP, a
		// client is told so and closed, and gives its slot back at once.
		ip, ok := s.admit(conn)
		if !ok {
			<-slots
			go s.refuse(conn, ip)
			continue
		}
		// ThreadingTCPServer: this client gets its own goroutine and
		// the loop goes straight back to Accept.
		go func() {
			defer func() { <-slots }()
			defer s.release(ip)
			s.handle(conn)
		}()
	}
}

// admit counts conn against its IP address's share, and reports false
// when that address already has MaxConnsPerIP clients.
func (s *Server) admit(conn net.Conn) (string, bool) {
	ip := conn.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	if s.MaxConnsPerIP <= 0 {
		return ip, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP == nil {
		s.perIP = make(map[string]int)
	}
	if s.perIP[ip] >= s.MaxConnsPerIP {
		return ip, false
	}
	s.perIP[ip]++
	return ip, true
}

func (s *Server) release(ip string) {
	if s.MaxConnsPerIP <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// refuse tells a client from an address that has its share why it is
// not served, and closes the connection with a FIN. A short deadline
// keeps a client that reads nothing from holding this up.
func (s *Server) refuse(conn net.Conn, ip string) {
	defer s.handlers.Done()
	defer s.untrackConn(conn)
	s.logf("client %s refused: too many connections from %s (limit %d)", conn.RemoteAddr(), ip, s.MaxConnsPerIP)
	conn.SetWriteDeadline(time.Now().Add(refuseTimeout))
	s.writeBye(conn, fmt.Sprintf("bye: too many connections from your address (limit %d), closing\n", s.MaxConnsPerIP))
	closeGracefully(conn)
}

// refuseTimeout bounds the write of a refusal.
const refuseTimeout = 100 * time.Millisecond

// writeBye sends line in the handler's protocol.
func (s *Server) writeBye(w io.Writer, line string) error {
	if b, ok := s.Handler.(ByeWriter); ok {
		return b.WriteBye(w, line)
	}
	_, err := io.WriteString(w, line)
	return err
}

// HandleOne accepts one connection on ln and handles it before
// returning, like Python's handle_request. It leaves ln open.
func (s *Server) HandleOne(ln net.Listener) error {
	if !s.trackListener(ln) {
		return ErrServerClosed
	}
	defer s.untrackListener(ln)
	conn, err := s.accept(ln)
	if err != nil {
		return err
	}
	if !s.trackConn(conn) {
		conn.Close()
		return ErrServerClosed
	}
	s.handle(conn)
	return nil
}

// accept waits for the next connection. Some failures are passing: a
// client that gave up before we accepted it (ECONNABORTED), or no file
// descriptor left for the new socket (EMFILE, ENFILE). Those are retried,
// the latter with a growing pause, so that a full descriptor table does
// not turn the loop into a busy spin. It is reported once per episode.
func (s *Server) accept(ln net.Listener) (net.Conn, error) {
	var pause time.Duration
	for {
		conn, err := ln.Accept()
		if err == nil {
			return conn, nil
		}
		switch {
		case errors.Is(err, net.ErrClosed) || s.isClosing():
			return nil, ErrServerClosed
		case isAborted(err):
			continue
		case !isOutOfDescriptors(err):
			return nil, fmt.Errorf("accept: %w", err)
		}
		if pause == 0 {
			s.logf("accept: %v; retrying until descriptors free up (see docs/errors.md#emfile)", err)
			pause = 5 * time.Millisecond
		} else if pause *= 2; pause > time.Second {
			pause = time.Second
		}
		timer := time.NewTimer(pause)
		select {
		case <-timer.C:
		case <-s.doneChan():
			timer.Stop()
			return nil, ErrServerClosed
		}
	}
}

// handle runs the handler for one connection and then closes it
// cleanly. A panicking handler loses its client, not the server.
func (s *Server) handle(conn net.Conn) {
	defer s.handlers.Done()
	defer s.untrackConn(conn)
	who := conn.RemoteAddr()
	s.logf("client %s connected", who)
	defer func() {
		if p := recover(); p != nil {
			s.logf("client %s: handler panicked: %v", who, p)
			conn.Close()
		}
	}()
	s.Handler.Handle(&serverConn{Conn: conn, srv: s})
	closeGracefully(conn)
	s.logf("client %s left", who)
}

// serverConn is the connection a handler sees. Every Read and Write
// gets a fresh deadline, so a client that stops sending, or stops
// reading our replies, is noticed after IdleTimeout. A handler that
// marks where its messages begin and end (BeginMessage, EndMessage)
// also gets MessageTimeout: a client that keeps the connection alive
// with a byte now and then must still finish each message in time.
type serverConn struct {
	net.Conn
	srv        *Server
	messageEnd time.Time // when the message under way must be complete; zero: none
}

// BeginMessage starts the clock for one message: from now, reads fail
// with a *MessageTimeoutError once MessageTimeout has passed.
func (c *serverConn) BeginMessage() {
	if d := c.srv.MessageTimeout; d > 0 {
		c.messageEnd = time.Now().Add(d)
	}
}

// EndMessage stops the message clock.
func (c *serverConn) EndMessage() { c.messageEnd = time.Time{} }

func (c *serverConn) Read(p []byte) (int, error) {
	// The deadline is IdleTimeout from now, or the end of the message
	// under way if that comes first.
	var deadline time.Time
	if d := c.srv.IdleTimeout; d > 0 {
		deadline = time.Now().Add(d)
	}
	slow := !c.messageEnd.IsZero() && (deadline.IsZero() || c.messageEnd.Before(deadline))
	if slow {
		deadline = c.messageEnd
	}
	c.Conn.SetReadDeadline(deadline)
	// Shutdown wakes blocked reads by moving their deadline to now. A
	// read that starts after that must not wait out a fresh deadline:
	// checking only after setting ours closes that gap.
	if c.srv.isClosing() {
		return 0, ErrServerClosed
	}
	n, err := c.Conn.Read(p)
	switch {
	case err == nil:
	case c.srv.isClosing():
		err = ErrServerClosed
	case errors.Is(err, os.ErrDeadlineExceeded) && slow:
		err = &MessageTimeoutError{Limit: c.srv.MessageTimeout, Err: err}
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = &IdleError{After: c.srv.IdleTimeout, Err: err}
	}
	return n, err
}

func (c *serverConn) Write(p []byte) (int, error) {
	if d := c.srv.IdleTimeout; d > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(d))
	}
	return c.Conn.Write(p)
}

// Shutdown stops accepting, tells every handler (their reads return
// ErrServerClosed) and waits for them to return. If ctx ends first, it
// closes the remaining connections and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose()
	finished := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		s.closeConns()
		return ctx.Err()
	}
}

// Close stops accepting and closes every connection at once, without
// waiting: Python's server_close.
func (s *Server) Close() error {
	// The connections are closed in the same step that marks the server
	// closing: a handler that saw "closing" first would say goodbye,
	// and Close promises no farewell.
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markClosingLocked()
	for conn := range s.conns {
		conn.Close()
	}
	return nil
}

// beginClose marks the server as closing, closes the listeners, and
// wakes every handler blocked in Read.
func (s *Server) beginClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.markClosingLocked() {
		for conn := range s.conns {
			conn.SetReadDeadline(time.Now())
		}
	}
}

// markClosingLocked marks the server as closing and closes its
// listeners, once; it reports whether this call did it.
func (s *Server) markClosingLocked() bool {
	if s.closing {
		return false
	}
	s.closing = true
	s.initLocked()
	close(s.done)
	for ln := range s.listeners {
		ln.Close()
	}
	return true
}

func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for conn := range s.conns {
		conn.Close()
	}
}

// The bookkeeping below lets Shutdown find every listener and
// connection. A connection is counted in s.handlers before its handler
// starts, and never once the server is closing.

func (s *Server) initLocked() {
	if s.done == nil {
		s.done = make(chan struct{})
		s.listeners = make(map[net.Listener]bool)
		s.conns = make(map[net.Conn]bool)
	}
}

func (s *Server) doneChan() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	return s.done
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) trackListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	if s.closing {
		return false
	}
	s.listeners[ln] = true
	return true
}

func (s *Server) untrackListener(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, ln)
}

func (s *Server) trackConn(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	if s.closing {
		return false
	}
	s.conns[conn] = true
	s.handlers.Add(1)
	return true
}

func (s *Server) untrackConn(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, conn)
}

func (s *Server) maxConns() int {
	if s.MaxConns > 0 {
		return s.MaxConns
	}
	return 1000
}

func (s *Server) logf(format string, args ...any) {
	if s.Log != nil {
		s.Log.Printf(format, args...)
	}
}

// closeGracefully ends a connection with a FIN rather than a reset.
// Closing a socket that still has unread input makes the kernel send
// RST, and the client may then lose our last reply. So: say we are done
// writing, discard what the client still sends until it closes too (or
// half a second passes, or a megabyte arrived), then close.
func closeGracefully(conn net.Conn) {
	if tcp, ok := conn.(interface{ CloseWrite() error }); ok {
		tcp.CloseWrite()
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	}
	conn.Close()
}

// ---- line framing, shared by both handlers ----

// maxLine is the longest line a client may send, newline included. The
// bufio.Reader never grows beyond it, whatever the client sends.
const maxLine = 4096

var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLine)

// readLine returns the next line without its "\n" or "\r\n" (telnet
// sends the latter). A last line without a newline counts too. A line
// that does not fit in r's buffer is an error, not a bigger buffer.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case err == nil:
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, errLineTooLong
	case errors.Is(err, io.EOF) && len(line) > 0:
		// The client's last line had no newline: answer it anyway.
	default:
		return nil, err
	}
	return line, nil
}

// A messageClock times one whole message. The connection a Server hands
// its handler is one (see serverConn).
type messageClock interface {
	BeginMessage()
	EndMessage()
}

// readRequest reads a client's next line. Waiting for its first byte is
// the idle timeout's business; from that byte on, the server's message
// clock runs, so a line trickled a byte at a time cannot take forever.
func readRequest(conn net.Conn, r *bufio.Reader) ([]byte, error) {
	if _, err := r.Peek(1); err != nil {
		return nil, err
	}
	if clock, ok := conn.(messageClock); ok {
		clock.BeginMessage()
		defer clock.EndMessage()
	}
	return readLine(r)
}

// farewell is the last thing a handler tells a client before it hangs
// up, or "" when the client left (or broke the connection) by itself.
func farewell(err error) string {
	var idle *IdleError
	var slow *MessageTimeoutError
	switch {
	case errors.Is(err, ErrServerClosed):
		return "bye: server shutting down\n"
	case errors.As(err, &idle):
		return fmt.Sprintf("bye: idle for %v, closing\n", idle.After)
	case errors.As(err, &slow):
		return fmt.Sprintf("bye: a line took longer than %v to arrive, closing\n", slow.Limit)
	case errors.Is(err, errLineTooLong):
		return fmt.Sprintf("error: %v, closing\n", err)
	}
	return ""
}

// ---- the "upper" handler ----

// upper answers every line with the same line in upper case, as the
// articles' echo server did with data.upper().
func upper(conn net.Conn) {
	lines := bufio.NewReaderSize(conn, maxLine)
	for {
		line, err := readRequest(conn, lines)
		if err != nil {
			if bye := farewell(err); bye != "" {
				io.WriteString(conn, bye)
			}
			return
		}
		reply := append(upperASCII(line), '\n')
		if _, err := conn.Write(reply); err != nil {
			return
		}
	}
}

// upperASCII upper-cases the ASCII letters and passes every other byte
// through, as Python's bytes.upper() does. The reply is exactly as long
// as the line. (bytes.ToUpper would turn each byte that is not UTF-8
// into the 3-byte U+FFFD, and some letters into longer ones: a line of
// 0xFF bytes would come back three times its size.)
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

// ---- length-prefixed framing ----

// A frame is a 4-byte big-endian length followed by that many bytes.
// The reader always knows how much is left of the current reply, so
// replies can be empty, contain any bytes, and follow each other
// without a pause or an acknowledgement.
const maxFrame = 1 << 20

var errFrameTooLarge = fmt.Errorf("frame larger than %d bytes", maxFrame)

// writeFrame sends the header and the payload in one Write, so they
// leave in as few packets as possible.
func writeFrame(w io.Writer, payload []byte) error {
	if len(payload) > maxFrame {
		return errFrameTooLarge
	}
	frame := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(frame, uint32(len(payload)))
	copy(frame[4:], payload)
	_, err := w.Write(frame)
	return err
}

// readFrame reads one frame, however the bytes were split or merged on
// the way. It returns io.EOF only when the stream ended cleanly between
// frames, and io.ErrUnexpectedEOF when it ended inside one. The length
// is checked before any memory is set aside for the payload.
func readFrame(r io.Reader) ([]byte, error) {
	var header [4]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(header[:])
	if size > maxFrame {
		return nil, fmt.Errorf("%w: the header says %d", errFrameTooLarge, size)
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return payload, nil
}

// ---- the "cmd" handler: the articles' mini ssh, made safe ----

// Running a command that a network client chose is how machines get
// taken over. This handler runs only the programs below, never through a
// shell (so ";", "|", "$(...)" and "*" are plain characters), with a
// time limit, and with arguments each program's rule accepts.
var allowed = map[string]func(args []string) error{
	"date":     dateArgs,
	"echo":     anyArgs,
	"hostname": noArgs, // with an argument it renames the machine (as root)
	"uptime":   noArgs,
	"whoami":   noArgs,
}

func anyArgs([]string) error { return nil }

func noArgs(args []string) error {
	if len(args) > 0 {
		return errors.New("takes no arguments")
	}
	return nil
}

// dateArgs allows -u and +FORMAT: date with other arguments can set the
// system clock. A field width in the format is refused too: it can only
// pad, and %2147483647c asks date for two gigabytes of spaces.
func dateArgs(args []string) error {
	for _, a := range args {
		switch {
		case a == "-u":
		case strings.HasPrefix(a, "+"):
			if hasFieldWidth(a[1:]) {
				return errors.New("+FORMAT takes no field width (as in %10c): a width only makes the output longer")
			}
		default:
			return errors.New("accepts only -u and +FORMAT")
		}
	}
	return nil
}

// hasFieldWidth reports whether a date format gives a conversion a
// width: a "%", any of the flags "-_0^#", then a digit from 1 to 9.
func hasFieldWidth(format string) bool {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && strings.IndexByte("-_0^#", format[i]) >= 0 {
			i++
		}
		if i < len(format) && '1' <= format[i] && format[i] <= '9' {
			return true
		}
		// format[i] is the conversion, or the second "%" of "%%".
	}
	return false
}

// cmdTimeout is how long a command may run before it is killed, and
// maxOutput how much it may print: a program that prints more is killed
// at once, so it cannot burn a CPU for cmdTimeout.
const (
	cmdTimeout = 5 * time.Second
	maxOutput  = 64 << 10
)

var errTooMuchOutput = fmt.Errorf("printed more than %d bytes", maxOutput)

// runFunc runs a program with arguments and returns what it printed.
// The handler takes it as a field, so tests can put a recorder in its
// place and prove that a refused command never reaches the system.
type runFunc func(ctx context.Context, name string, args []string) ([]byte, error)

// cmdHandler reads one command per line and answers each with a frame.
type cmdHandler struct {
	run      runFunc
	timeout  time.Duration
	log      *log.Logger
	programs chan struct{} // one token per program running; nil means no limit
}

// newCmdHandler returns a handler that runs at most maxPrograms programs
// at once, for all its clients together.
func newCmdHandler(run runFunc, timeout time.Duration, maxPrograms int, log *log.Logger) *cmdHandler {
	return &cmdHandler{run: run, timeout: timeout, log: log, programs: make(chan struct{}, maxPrograms)}
}

// WriteBye sends the server's own farewell as a frame, like every reply.
func (h *cmdHandler) WriteBye(w io.Writer, line string) error {
	return writeFrame(w, []byte(line))
}

func (h *cmdHandler) Handle(conn net.Conn) {
	lines := bufio.NewReaderSize(conn, maxLine)
	for {
		line, err := readRequest(conn, lines)
		if err != nil {
			if bye := farewell(err); bye != "" {
				writeFrame(conn, []byte(bye))
			}
			return
		}
		reply := h.answer(conn.RemoteAddr(), string(line))
		if err := writeFrame(conn, reply); err != nil {
			return
		}
	}
}

// answer checks a command line against the allowlist, runs it if it
// passes and returns the reply. Every line gets exactly one reply, and
// a refusal leaves the connection usable for the next command.
func (h *cmdHandler) answer(from net.Addr, line string) []byte {
	// Fields splits on spaces and nothing else: no quotes, no
	// variables, no globbing. What the client typed is what runs.
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return []byte("refused: empty command; allowed: " + allowedNames() + "\n")
	}
	name, args := fields[0], fields[1:]
	check, ok := allowed[name]
	if !ok {
		h.logf("client %s: refused %s", from, logged(line))
		return []byte(fmt.Sprintf("refused: %q is not an allowed command; allowed: %s\n", name, allowedNames()))
	}
	if err := check(args); err != nil {
		h.logf("client %s: refused %s", from, logged(line))
		return []byte(fmt.Sprintf("refused: %s %v\n", name, err))
	}

	// Programs cost processes and CPU: past the limit, say "busy" at
	// once rather than queue without bound.
	if h.programs != nil {
		select {
		case h.programs <- struct{}{}:
			defer func() { <-h.programs }()
		default:
			h.logf("client %s: busy, did not run %s", from, logged(line))
			return []byte(fmt.Sprintf("busy: the server runs at most %d programs at once; try again in a moment\n", cap(h.programs)))
		}
	}

	h.logf("client %s: ran %s", from, logged(line))
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	out, err := h.run(ctx, name, args)
	switch {
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, exec.ErrDot):
		return []byte(fmt.Sprintf("unavailable: %s is not installed on this machine\n", name))
	case errors.Is(err, errTooMuchOutput):
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		return append(out, fmt.Sprintf("error: %s %v and was stopped\n", name, err)...)
	case ctx.Err() != nil:
		return []byte(fmt.Sprintf("error: %s did not finish within %v and was stopped\n", name, h.timeout))
	case err != nil:
		return append(out, fmt.Sprintf("error: %s: %v\n", name, err)...)
	case len(out) == 0:
		// On the wire an empty frame would do; a person at the
		// client deserves words.
		return []byte("(no output)\n")
	}
	return out
}

func (h *cmdHandler) logf(format string, args ...any) {
	if h.log != nil {
		h.log.Printf(format, args...)
	}
}

// maxLogged is how many bytes of a client's line the log repeats.
const maxLogged = 32

// logged quotes what a client sent, for the log: at most maxLogged of its
// bytes, then the full length, so that a log line never costs much more
// than the input that caused it, whatever the client sends.
func logged(line string) string {
	if len(line) <= maxLogged {
		return strconv.Quote(line)
	}
	cut := maxLogged
	for i := 0; i < utf8.UTFMax-1 && !utf8.RuneStart(line[cut]); i++ {
		cut-- // do not cut a character in two
	}
	return fmt.Sprintf("%q… (%d bytes)", line[:cut], len(line))
}

func allowedNames() string {
	names := make([]string, 0, len(allowed))
	for name := range allowed {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// runProgram starts the program directly (exec, not "sh -c"), feeds it
// no input, and kills it when ctx ends or as soon as it has printed more
// than maxOutput bytes; then it returns the first maxOutput bytes and
// errTooMuchOutput.
func runProgram(ctx context.Context, name string, args []string) ([]byte, error) {
	ctx, kill := context.WithCancel(ctx)
	defer kill()
	cmd := exec.CommandContext(ctx, name, args...)
	out := &cappedBuffer{max: maxOutput, full: kill}
	cmd.Stdout = out
	cmd.Stderr = out
	// A program's children could keep its output open after it was
	// killed; WaitDelay stops Run from waiting for them forever.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if out.overflowed() {
		err = errTooMuchOutput
	}
	return out.bytes(), err
}

// cappedBuffer keeps the first max bytes written to it and pretends to
// take the rest, so a chatty program neither fills our memory nor blocks.
// The first byte past max calls full, once.
type cappedBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	max  int
	over bool
	full func()
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - b.buf.Len()
	b.buf.Write(p[:max(0, min(room, len(p)))])
	if len(p) > room && !b.over {
		b.over = true
		if b.full != nil {
			b.full()
		}
	}
	return len(p), nil
}

func (b *cappedBuffer) overflowed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.over
}

func (b *cappedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Bytes()
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

// ---- the client ----

// runClient connects to addr, then for each line of stdin sends it and
// prints the reply: a line for upper, a frame for cmd. When stdin ends it
// half-closes the connection, prints whatever the server still sends,
// and returns when the server closes.
func runClient(ctx context.Context, addr, handler string, timeout time.Duration, stdin io.Reader, stdout io.Writer) error {
	dialer := net.Dialer{Timeout: 5 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	replies := bufio.NewReaderSize(conn, maxLine)
	readReply := func() ([]byte, error) { return readLine(replies) }
	if handler == "cmd" {
		readReply = func() ([]byte, error) { return readFrame(replies) }
	}
	// printReply prints one reply on lines of its own and reports
	// whether the server has closed the connection.
	printReply := func() (bool, error) {
		if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return false, err
		}
		reply, err := readReply()
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("read from %s: %w", addr, err)
		}
		if len(reply) == 0 || reply[len(reply)-1] != '\n' {
			reply = append(reply, '\n')
		}
		_, err = stdout.Write(reply)
		return false, err
	}

	lines := bufio.NewScanner(stdin)
	for lines.Scan() {
		if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(conn, "%s\n", lines.Text()); err != nil {
			return fmt.Errorf("send to %s: %w", addr, err)
		}
		// Wait for the reply before sending the next line, so each
		// answer is printed under the question that caused it.
		closed, err := printReply()
		if closed || err != nil {
			return err
		}
	}
	if err := lines.Err(); err != nil {
		return fmt.Errorf("read standard input: %w", err)
	}

	// Half-close: the server reads EOF, but we can still read its answer.
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("close write side: %w", err)
	}
	for {
		closed, err := printReply()
		if closed || err != nil {
			return err
		}
	}
}

// ---- errors ----

// Winsock reports its own error numbers, which are not the syscall.E*
// values Go defines on Windows, so each cause is checked both ways.
const (
	wsaEACCES        = syscall.Errno(10013)
	wsaEMFILE        = syscall.Errno(10024)
	wsaEADDRINUSE    = syscall.Errno(10048)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
	wsaECONNABORTED  = syscall.Errno(10053)
	wsaECONNRESET    = syscall.Errno(10054)
	wsaENOBUFS       = syscall.Errno(10055)
	wsaECONNREFUSED  = syscall.Errno(10061)
)

// isOutOfDescriptors reports an Accept that failed because the process
// or the system has no descriptor (or buffer) left for a new socket.
func isOutOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, wsaEMFILE) || errors.Is(err, wsaENOBUFS)
}

// isAborted reports a client that reset its connection while it was
// still waiting in the backlog.
func isAborted(err error) bool {
	return errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, wsaECONNABORTED)
}

// explain turns an error into the one line a learner sees, pointing to
// the entry in docs/errors.md that says what happened and what to do.
func explain(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, wsaEADDRNOTAVAIL):
		return fmt.Sprintf("%v: that IP address is not one of this machine's (see docs/errors.md#eaddrnotavail)", err)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, wsaEACCES):
		return fmt.Sprintf("%v: ports below 1024 need special permission; use a higher port (see docs/errors.md#eacces)", err)
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, wsaECONNREFUSED):
		return fmt.Sprintf("%v: nothing listens at that address; is the server running? (see docs/errors.md#econnrefused)", err)
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, wsaECONNRESET):
		return fmt.Sprintf("%v: the peer aborted the connection (see docs/errors.md#econnreset)", err)
	case isOutOfDescriptors(err):
		return fmt.Sprintf("%v: the process ran out of file descriptors (see docs/errors.md#emfile)", err)
	case errors.Is(err, errFrameTooLarge):
		return fmt.Sprintf("%v: the other side does not speak this protocol; is it the cmd handler? (see docs/errors.md#emsgsize)", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%v: the connection ended in the middle of a reply (see docs/errors.md#eof)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer in time (see docs/errors.md#timeout)", err)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%v: the host name could not be resolved (see docs/errors.md#no-such-host)", err)
	}
	return err.Error()
}

// isTimeout reports a deadline that passed: a read or write deadline
// (os.ErrDeadlineExceeded) or a dial that gave up. Timeout is the one
// method of net.Error that is not deprecated.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
