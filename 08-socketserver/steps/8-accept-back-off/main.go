// Step 8 of 08-socketserver: an accept loop that survives EMFILE.
//
// In step 7 one failed Accept ended Serve. Some failures pass, though:
// a client that gave up while waiting in the backlog (ECONNABORTED), or
// no descriptor left for the new socket (EMFILE, ENFILE) until some
// client leaves. Those are retried, the latter after a pause that
// doubles each time, so that a full descriptor table does not turn the
// loop into a busy spin. The trouble is logged once per episode.
//
// Try it: ulimit -n 20 in a shell, then run the server there and
// connect more clients than it has descriptors for.
package main

import (
	"bufio"
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
	"strings"
	"sync"
	"syscall"
	"time"
)

// A Handler talks to one client, like the handle method of Python's
// BaseRequestHandler. The server closes the connection when Handle
// returns.
type Handler interface {
	Handle(conn net.Conn)
}

// HandlerFunc lets an ordinary function be a Handler.
type HandlerFunc func(conn net.Conn)

// Handle calls f(conn).
func (f HandlerFunc) Handle(conn net.Conn) { f(conn) }

// ErrServerClosed is what Serve returns after Shutdown, and what a
// handler's Read returns once the server is shutting down.
var ErrServerClosed = errors.New("server closed")

// IdleError is what a handler's Read returns when the client sent
// nothing for the server's IdleTimeout.
type IdleError struct {
	After time.Duration
	Err   error
}

func (e *IdleError) Error() string { return fmt.Sprintf("idle for %v: %v", e.After, e.Err) }
func (e *IdleError) Unwrap() error { return e.Err }

// Server accepts connections and gives each to Handler.
type Server struct {
	Handler     Handler
	Sequential  bool          // true: one client at a time (TCPServer)
	MaxConns    int           // most clients at once when concurrent; 0 means 1000
	IdleTimeout time.Duration // per read and per write; 0 means no limit

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]bool
	conns     map[net.Conn]bool
	handlers  sync.WaitGroup // one for each handler running
}

// Serve accepts connections on ln and hands each to the handler:
// Python's serve_forever. It returns ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	if !s.track(ln, nil) {
		return ErrServerClosed
	}
	// A concurrent server takes a slot before each Accept. With every
	// slot taken it stops accepting, and the kernel keeps new clients
	// waiting in the listen backlog until a slot frees up.
	var slots chan struct{}
	if !s.Sequential {
		maxConns := s.MaxConns
		if maxConns <= 0 {
			maxConns = 1000
		}
		slots = make(chan struct{}, maxConns)
	}
	for {
		if slots != nil {
			slots <- struct{}{}
		}
		conn, err := s.accept(ln)
		if err != nil {
			return err
		}
		if !s.track(nil, conn) {
			conn.Close()
			return ErrServerClosed
		}
		if s.Sequential {
			// TCPServer: the next Accept waits until this client is done.
			s.handle(conn)
			continue
		}
		// ThreadingTCPServer: this client gets its own goroutine and
		// the loop goes straight back to Accept.
		go func() {
			defer func() { <-slots }()
			s.handle(conn)
		}()
	}
}

// accept waits for the next connection. A client that gave up while
// still in the backlog is skipped; a full descriptor table is waited
// out, with a pause that doubles up to a second. Other failures, and
// the listener's close, end Serve.
func (s *Server) accept(ln net.Listener) (net.Conn, error) {
	var pause time.Duration
	for {
		conn, err := ln.Accept()
		switch {
		case err == nil:
			return conn, nil
		case s.isClosing():
			return nil, ErrServerClosed
		case errors.Is(err, syscall.ECONNABORTED):
			continue
		case !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE):
			return nil, err
		}
		if pause == 0 {
			log.Printf("accept: %v; retrying until descriptors free up", err)
			pause = 5 * time.Millisecond
		} else if pause *= 2; pause > time.Second {
			pause = time.Second
		}
		time.Sleep(pause)
	}
}

// handle runs the handler for one connection, then closes it.
func (s *Server) handle(conn net.Conn) {
	defer s.handlers.Done()
	defer s.untrack(conn)
	defer conn.Close()
	s.Handler.Handle(&serverConn{Conn: conn, srv: s})
}

// serverConn is the connection a handler sees. Every Read and Write
// gets a fresh deadline, so a client that stops sending, or stops
// reading our replies, is noticed after IdleTimeout. Once the server is
// shutting down, reads fail with ErrServerClosed.
type serverConn struct {
	net.Conn
	srv *Server
}

func (c *serverConn) Read(p []byte) (int, error) {
	if d := c.srv.IdleTimeout; d > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(d))
	}
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

// Shutdown stops accepting, wakes every handler blocked in Read (by
// moving its deadline to now) and waits for the handlers to return. If
// ctx ends first, it closes the remaining connections and returns ctx's
// error: Python's shutdown and server_close in one.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	for conn := range s.conns {
		conn.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()

	finished := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		for conn := range s.conns {
			conn.Close()
		}
		return ctx.Err()
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// track remembers a listener or a connection so Shutdown can find it,
// and counts a connection's handler before it starts. Once the server
// is closing it takes nothing new.
func (s *Server) track(ln net.Listener, conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.conns == nil {
		s.listeners = make(map[net.Listener]bool)
		s.conns = make(map[net.Conn]bool)
	}
	if ln != nil {
		s.listeners[ln] = true
	}
	if conn != nil {
		s.conns[conn] = true
		s.handlers.Add(1)
	}
	return true
}

func (s *Server) untrack(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, conn)
}

// bye is what a handler tells a client before it hangs up, or "" when
// the client left by itself.
func bye(err error) string {
	var idle *IdleError
	switch {
	case errors.Is(err, ErrServerClosed):
		return "bye: server shutting down\n"
	case errors.As(err, &idle):
		return fmt.Sprintf("bye: idle for %v, closing\n", idle.After)
	}
	return ""
}

// upper answers every line with the same line in upper case, as the
// articles' echo server did with data.upper().
func upper(conn net.Conn) {
	lines := bufio.NewScanner(conn)
	for lines.Scan() {
		reply := append(upperASCII(lines.Bytes()), '\n')
		if _, err := conn.Write(reply); err != nil {
			return
		}
	}
	io.WriteString(conn, bye(lines.Err()))
}

// upperASCII upper-cases the ASCII letters and passes every other byte
// through, as Python's bytes.upper() does.
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

// ---- length-prefixed frames ----

// maxFrame is the largest payload a frame may carry.
const maxFrame = 1 << 20

var errFrameTooLarge = fmt.Errorf("frame larger than %d bytes", maxFrame)

// writeFrame sends the header and the payload in one Write.
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
// the way. The length is checked before any memory is set aside.
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

// ---- the command service ----

// allowed is the whole list of programs a client may run, each with a
// rule for its arguments. Nothing else ever runs.
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

// dateArgs allows -u and +FORMAT without a field width: other arguments
// can set the clock, and a width such as %2147483647c only pads.
func dateArgs(args []string) error {
	for _, a := range args {
		if a != "-u" && (!strings.HasPrefix(a, "+") || hasFieldWidth(a[1:])) {
			return errors.New("accepts only -u and +FORMAT, with no field width")
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
	}
	return false
}

// cmdHandler reads one command per line and answers each with a frame.
type cmdHandler struct{}

func (cmdHandler) Handle(conn net.Conn) {
	lines := bufio.NewScanner(conn)
	for lines.Scan() {
		if err := writeFrame(conn, answer(lines.Text())); err != nil {
			return
		}
	}
	if msg := bye(lines.Err()); msg != "" {
		writeFrame(conn, []byte(msg))
	}
}

// answer checks a command line against the allowlist and runs it if it
// passes. strings.Fields splits on spaces only: no quotes, no variables,
// no globbing, and exec starts the program itself, not "sh -c".
func answer(line string) []byte {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return []byte("refused: empty command\n")
	}
	name, args := fields[0], fields[1:]
	check, ok := allowed[name]
	if !ok {
		return []byte(fmt.Sprintf("refused: %q is not an allowed command\n", name))
	}
	if err := check(args); err != nil {
		return []byte(fmt.Sprintf("refused: %s %v\n", name, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// None of the allowed programs prints more than a few lines for a
	// line of arguments, so keeping all of it is safe here.
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		out = append(out, fmt.Sprintf("error: %s: %v\n", name, err)...)
	}
	return out
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9008", "host:port to listen on")
	sequential := flag.Bool("sequential", false, "serve one client at a time, like Python's TCPServer")
	handler := flag.String("handler", "upper", "upper (lines in upper case) or cmd (run an allowed command)")
	maxConns := flag.Int("max-conns", 1000, "most clients served at once; more wait in the backlog")
	idle := flag.Duration("idle-timeout", 2*time.Minute, "close a client that sends nothing (or reads nothing) for this long")
	flag.Parse()
	// Ctrl+C and SIGTERM cancel ctx instead of killing the program.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	srv := &Server{Handler: HandlerFunc(upper), Sequential: *sequential, MaxConns: *maxConns, IdleTimeout: *idle}
	if *handler == "cmd" {
		srv.Handler = cmdHandler{}
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		log.Fatal(err)
	case <-ctx.Done():
	}

	fmt.Println("shutting down")
	deadline, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(deadline); err != nil {
		fmt.Println("grace period over: closed the remaining connections")
	}
	fmt.Println("stopped")
}
