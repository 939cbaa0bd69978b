// The Server: Python's socketserver.TCPServer and ThreadingTCPServer in
// Go, in the manner of net/http. It owns the listening socket, the
// accept loop, the limits, the timeouts and the shutdown; a Handler owns
// one conversation.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"
)

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
//
// Go's net turns TCP keep-alive on for every accepted connection, at the
// cost of four setsockopt calls each. Keep-alive finds a peer that
// vanished without a word; with an IdleTimeout, the server finds it
// itself, so it asks for none (a negative KeepAlive).
func (s *Server) ListenAndServe() error {
	var lc net.ListenConfig
	if s.IdleTimeout > 0 {
		lc.KeepAlive = -1
	}
	ln, err := lc.Listen(context.Background(), "tcp", s.Addr)
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
//
// Moving a deadline costs a timer update, so a deadline that would move
// later is left where it is: when it passes, the read or write moves it
// to where it should be and goes on. A client is still closed after
// IdleTimeout of silence, never sooner.
type serverConn struct {
	net.Conn
	srv        *Server
	messageEnd time.Time // when the message under way must be complete; zero: none
	readBy     time.Time // the read deadline in place; zero: none
	writeBy    time.Time // the write deadline in place; zero: none
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
	if deadline.IsZero() != c.readBy.IsZero() || deadline.Before(c.readBy) {
		c.setReadDeadline(deadline) // sooner than the one in place
	}
	// Shutdown wakes blocked reads by moving their deadline to now. A
	// read that starts after that must not wait out a fresh deadline:
	// checking only after setting ours closes that gap.
	if c.srv.isClosing() {
		return 0, ErrServerClosed
	}
	n, err := c.Conn.Read(p)
	for err != nil && errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(deadline) {
		// The deadline in place was an earlier read's: move it to ours.
		c.setReadDeadline(deadline)
		if c.srv.isClosing() {
			return 0, ErrServerClosed
		}
		n, err = c.Conn.Read(p)
	}
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

func (c *serverConn) setReadDeadline(t time.Time) {
	c.Conn.SetReadDeadline(t)
	c.readBy = t
}

func (c *serverConn) Write(p []byte) (int, error) {
	d := c.srv.IdleTimeout
	if d <= 0 {
		return c.Conn.Write(p)
	}
	deadline := time.Now().Add(d)
	if c.writeBy.IsZero() {
		c.Conn.SetWriteDeadline(deadline)
		c.writeBy = deadline
	}
	n, err := c.Conn.Write(p)
	for err != nil && errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(deadline) {
		// The deadline in place was an earlier write's: move it to ours.
		c.Conn.SetWriteDeadline(deadline)
		c.writeBy = deadline
		var more int
		more, err = c.Conn.Write(p[n:])
		n += more
	}
	return n, err
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
