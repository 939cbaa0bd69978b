// Exercise 06-goroutines/exercise-chat: a chat room. Each line a client
// sends goes to every other client, prefixed with the sender's address,
// and the room is told when someone joins or leaves.
//
// This file is the part you do not write: flags, listening, the accept
// loop with one goroutine per client, the writer goroutine that empties
// each client's outbox, and the shutdown sequence. Your part is in
// starter.go: the broadcaster goroutine, which alone owns the set of
// members, and the loop that reads one client's lines.
//
// Run it:
//
//	go run ./06-goroutines/exercise-chat   # server, on 127.0.0.1:9006
//	nc 127.0.0.1 9006                      # in two or three terminals
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
	"sync"
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

// writeTimeout bounds each write to a client. A client whose outbox
// fills up is dropped at once by the broadcaster; this deadline frees a
// writer stuck on a client that stopped reading while the room is quiet.
const writeTimeout = 10 * time.Second

// run is the whole program. Tests call it directly with their own
// arguments and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("exercise-chat", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9006", "`host:port` to listen on (port 0 picks a free port)")
	maxLine := flags.Int("max-line", 1024, "longest line a client may send, in bytes; a longer one closes that client")
	outbox := flags.Int("outbox", 64, "lines that may wait for one client; a client that lets more pile up is dropped")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	switch {
	case flags.NArg() > 0:
		fmt.Fprintf(stderr, "unexpected argument %q\n", flags.Arg(0))
	case *maxLine < 1:
		fmt.Fprintln(stderr, "-max-line must be at least 1")
	case *outbox < 1:
		fmt.Fprintln(stderr, "-outbox must be at least 1")
	default:
		r := &room{
			log:        log.New(stdout, "", 0),
			maxLine:    *maxLine,
			outboxSize: *outbox,
			joins:      make(chan *client),
			messages:   make(chan message),
			leaves:     make(chan departure),
		}
		return r.serve(ctx, *addr)
	}
	flags.Usage()
	return errUsage
}

// client is one member of the room.
type client struct {
	// addr is the client's address, "127.0.0.1:52814": its name in the room.
	addr string
	conn *net.TCPConn
	// outbox holds the lines waiting to be written to this client, each
	// ending in "\n". Only the broadcaster sends to it and closes it;
	// only this client's writer goroutine receives from it.
	outbox chan string
}

// message is one line a client said, on its way to the broadcaster.
type message struct {
	from *client
	text string // without the line ending
}

// departure tells the broadcaster that a client is leaving.
type departure struct {
	who *client
	// farewell is a last line for the leaving client itself, such as
	// "* server shutting down\n", or "" for none.
	farewell string
}

// room is what the goroutines share: settings, the log, and three
// channels to the broadcaster. Nothing else is shared: the set of
// members lives inside the broadcaster goroutine, so no lock is needed.
type room struct {
	log        *log.Logger
	maxLine    int
	outboxSize int

	joins    chan *client
	messages chan message
	leaves   chan departure
}

// serve listens on addr, runs the broadcaster, and starts one goroutine
// per client until ctx is cancelled. Then it stops accepting, waits for
// every client goroutine to finish, stops the broadcaster, and returns.
func (r *room) serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	// Print the real address: with port 0 the kernel chose the port.
	r.log.Printf("listening on %s", ln.Addr())

	// The broadcaster outlives every client goroutine, so a client can
	// always hand it a message or its departure without waiting forever.
	stop := make(chan struct{})
	broadcasterDone := make(chan struct{})
	go func() {
		defer close(broadcasterDone)
		r.broadcast(stop)
	}()

	// Accept blocks until a client connects; closing the listener is
	// the way to wake it up, so a stopped context closes it.
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()

	var clients sync.WaitGroup
	for {
		conn, err := ln.(*net.TCPListener).AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			break
		}
		if err != nil {
			// A failure about one connection, or a passing shortage of
			// file descriptors: lesson 06 shows how to back off. Here a
			// short pause keeps the loop from spinning.
			r.log.Printf("accept failed: %v", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		clients.Add(1)
		go func() {
			defer clients.Done()
			r.serveClient(ctx, conn)
		}()
	}

	r.log.Printf("shutting down")
	clients.Wait()
	close(stop)
	<-broadcasterDone
	r.log.Printf("stopped")
	return nil
}

// serveClient runs one client from arrival to departure: it starts the
// writer goroutine, joins the room, reads the client's lines, leaves the
// room, and closes the connection once the writer has written the rest.
func (r *room) serveClient(ctx context.Context, conn *net.TCPConn) {
	c := &client{
		addr:   conn.RemoteAddr().String(),
		conn:   conn,
		outbox: make(chan string, r.outboxSize),
	}
	r.log.Printf("client %s connected", c.addr)

	written := make(chan struct{})
	go func() {
		defer close(written)
		r.write(c)
	}()

	// On shutdown, a read deadline in the past wakes the Read that
	// readLines is blocked in.
	stopWake := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stopWake()

	r.joins <- c
	farewell := r.readLines(ctx, c)
	r.leaves <- departure{who: c, farewell: farewell}

	// The broadcaster closes the outbox when it handles the departure;
	// the writer then writes what is left in it and returns.
	<-written
	closeGracefully(conn)
	r.log.Printf("client %s gone", c.addr)
}

// write is the client's writer goroutine: it writes each line of the
// outbox until the broadcaster closes it. If a write fails, the client
// is gone or does not read: the connection is closed, which also ends
// the client's reader, and the rest of the outbox is thrown away, so
// that the broadcaster never waits for this client.
func (r *room) write(c *client) {
	for line := range c.outbox {
		c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := io.WriteString(c.conn, line); err != nil {
			c.conn.Close()
			for range c.outbox {
			}
			return
		}
	}
}

// closeGracefully ends a connection with a FIN rather than a reset.
// Closing a socket that still has unread input makes the kernel send
// RST, and the client may then lose the last lines we wrote. So: say we
// are done writing, read and discard what the client still sends until
// it closes too (at most 64 KB, or for a second), then close.
func closeGracefully(conn *net.TCPConn) {
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(conn, 64<<10))
	conn.Close()
}

// Winsock reports its own error numbers, which are not the syscall.E*
// values Go defines on Windows, so each cause is checked both ways.
const (
	wsaEADDRINUSE    = syscall.Errno(10048)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
	wsaEACCES        = syscall.Errno(10013)
)

// explain turns an error into the one line a learner sees, pointing to
// the entry in docs/errors.md that says what happened and what to do.
func explain(err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, wsaEADDRNOTAVAIL):
		return fmt.Sprintf("%v: that IP address is not one of this machine's (see docs/errors.md#eaddrnotavail)", err)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, wsaEACCES):
		return fmt.Sprintf("%v: ports below 1024 need special permission; use a higher port (see docs/errors.md#eacces)", err)
	}
	return err.Error()
}
