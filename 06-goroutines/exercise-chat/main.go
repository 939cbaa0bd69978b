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
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
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

// maxBatch is the most one Write sends to a member: a member who reads
// takes a batch in far less than -slow-after.
const maxBatch = 64 << 10

// run is the whole program. Tests call it directly with their own
// arguments and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("exercise-chat", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9006", "`host:port` to listen on (port 0 picks a free port)")
	maxLine := flags.Int("max-line", 1024, "longest line a client may send, in bytes; a longer one closes that client")
	outbox := flags.Int("outbox", 1<<20, "`bytes` that may wait for one client; a client that lets more pile up is too slow, and dropped")
	slowAfter := flags.Duration("slow-after", 10*time.Second, "a client whose connection takes none of the bytes waiting for it for this long is too slow")
	idle := flags.Duration("idle-timeout", 30*time.Minute, "close a client that completes no line for this long")
	maxConns := flags.Int("max-conns", 1000, "how many clients are served at once; more wait in the backlog")
	maxPerIP := flags.Int("max-conns-per-ip", 100, "how many of those may come from one IP address; more are told so and closed (0: no limit)")
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
	case *slowAfter <= 0 || *idle <= 0:
		fmt.Fprintln(stderr, "-slow-after and -idle-timeout must be positive")
	case *maxConns < 1:
		fmt.Fprintln(stderr, "-max-conns must be at least 1")
	case *maxPerIP < 0:
		fmt.Fprintln(stderr, "-max-conns-per-ip must not be negative")
	default:
		r := &room{
			log:        log.New(stdout, "", 0),
			maxLine:    *maxLine,
			outboxSize: *outbox,
			slowAfter:  *slowAfter,
			idle:       *idle,
			maxConns:   *maxConns,
			perIP:      &addrCounts{limit: *maxPerIP, n: make(map[netip.Addr]int)},
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
	conn *memberConn
	// outbox holds the lines on their way to this client, each ending
	// in "\n". Only the broadcaster puts lines in it and closes it;
	// only this client's writer goroutine takes them out.
	outbox *outbox
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
	slowAfter  time.Duration
	idle       time.Duration
	maxConns   int
	perIP      *addrCounts

	joins    chan *client
	messages chan message
	leaves   chan departure
}

// serve listens on addr and serves the room on it until ctx is
// cancelled.
func (r *room) serve(ctx context.Context, addr string) error {
	if err := checkHostPort(addr); err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return r.serveOn(ctx, ln.(*net.TCPListener))
}

// tcpListener is what the room needs from a listener. *net.TCPListener
// has it; so can a test's stand-in that fails on purpose.
type tcpListener interface {
	AcceptTCP() (*net.TCPConn, error)
	Addr() net.Addr
	Close() error
}

// serveOn runs the broadcaster, and starts one goroutine per client
// until ctx is cancelled. Then it stops accepting, waits for every
// client goroutine to finish, stops the broadcaster, and returns nil.
// It returns an error only if the listener is closed under it.
func (r *room) serveOn(ctx context.Context, ln tcpListener) error {
	defer ln.Close()
	// A listener that breaks ends the room as Ctrl+C does, through
	// this context, and serveOn then returns an error.
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
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
	r.acceptLoop(ctx, ln, &clients)
	broken := parent.Err() == nil
	cancel()

	r.log.Printf("shutting down")
	clients.Wait()
	close(stop)
	<-broadcasterDone
	if broken {
		return errors.New("the listener was closed while the room was open")
	}
	r.log.Printf("stopped")
	return nil
}

// acceptLoop starts one goroutine per client, counted in clients, until
// the listener is closed. At most r.maxConns are served at once: the
// rest wait in the kernel's backlog. At most r.perIP.limit come from
// one IP address: the rest are told so and closed.
func (r *room) acceptLoop(ctx context.Context, ln tcpListener, clients *sync.WaitGroup) {
	// slots is a semaphore, as in lesson 06: a slot is taken before
	// Accept and given back when the client leaves.
	slots := make(chan struct{}, r.maxConns)
	failures := 0 // Accept errors in a row, for the back-off below
	for {
		// Take a slot; wait for one only while the room is full, and
		// stop waiting at shutdown. (With a slot free, Accept returns
		// once shutdown closes the listener, so nothing is accepted
		// after "shutting down".)
		select {
		case slots <- struct{}{}:
		default:
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		conn, err := ln.AcceptTCP()
		if err != nil {
			<-slots
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A passing failure, above all "too many open files"
			// (EMFILE). The client stays in the backlog, so an
			// immediate retry fails again and the loop would spin:
			// wait longer after each failure, up to a second, and log
			// only the first of a streak, as lesson 06 does.
			failures++
			if failures == 1 {
				r.log.Printf("accept failed, retrying with back-off: %s", explain(err))
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
			r.log.Printf("accepting again after %d failed attempts", failures)
			failures = 0
		}
		clients.Add(1)
		if !r.perIP.add(conn) {
			// Over the cap for its address: it takes no slot, and is
			// told why in a goroutine of its own, so that a client that
			// does not read cannot hold up the loop.
			<-slots
			r.log.Printf("client %s refused: %d connections from its address already", conn.RemoteAddr(), r.perIP.limit)
			go func() {
				defer clients.Done()
				refuse(conn, r.perIP.limit)
			}()
			continue
		}
		go func() {
			defer clients.Done()
			defer func() { <-slots }()
			defer r.perIP.remove(conn)
			r.serveClient(ctx, conn)
		}()
	}
}

// serveClient runs one client from arrival to departure: it starts the
// writer goroutine, joins the room, reads the client's lines, leaves the
// room, and closes the connection once the writer has written the rest.
func (r *room) serveClient(ctx context.Context, conn *net.TCPConn) {
	c := &client{
		addr:   conn.RemoteAddr().String(),
		conn:   &memberConn{TCPConn: conn, ctx: ctx, idle: r.idle, lastLine: time.Now()},
		outbox: &outbox{limit: r.outboxSize, slowAfter: r.slowAfter, ready: make(chan struct{}, 1), now: time.Now},
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
	if farewell == "" && c.conn.idled {
		farewell = fmt.Sprintf("* idle for %v, closing\n", r.idle)
	}
	r.leaves <- departure{who: c, farewell: farewell}

	// The broadcaster closes the outbox when it handles the departure;
	// the writer then writes what is left in it and returns.
	<-written
	closeGracefully(conn)
	r.log.Printf("client %s gone", c.addr)
}

// write is the client's writer goroutine: it writes the lines of the
// outbox, in batches of up to maxBatch bytes, until the broadcaster
// closes it. If a write fails, the client is gone or does not read: the
// connection is closed, which also ends the client's reader.
func (r *room) write(c *client) {
	batch := make([]byte, 0, maxBatch)
	for {
		batch = c.outbox.take(batch[:0])
		if len(batch) == 0 {
			return // closed, and everything written
		}
		// A client that reads takes a batch at once; one that does not
		// read lets this deadline pass.
		c.conn.SetWriteDeadline(time.Now().Add(r.slowAfter))
		_, err := c.conn.Write(batch)
		c.outbox.wrote(len(batch), err)
		if err != nil {
			c.conn.Close()
			return
		}
	}
}

// outbox is the queue of lines for one client. put never waits, and it
// judges slowness over time, not at one instant: a burst (200
// newcomers, a talker's 200 long lines) costs a client that reads
// nothing but a few milliseconds of queue. A client is too slow once
// bytes have waited for it longer than slowAfter without its connection
// taking any, or once more than limit bytes wait.
type outbox struct {
	limit     int
	slowAfter time.Duration
	ready     chan struct{}    // capacity 1: wakes the writer
	now       func() time.Time // time.Now; tests move a clock by hand

	mu     sync.Mutex
	lines  []string  // queued, not yet taken by the writer
	behind int       // bytes queued or being written
	since  time.Time // since when bytes wait without any progress
	closed bool      // no more lines: the writer ends once all are written
	failed bool      // a write failed: lines go nowhere
}

// put queues line for the client and reports true, or reports false,
// queueing nothing, if the client is too slow. Lines, like strings,
// are shared: a line for every member is in memory once.
func (o *outbox) put(line string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.failed {
		return true // on its way out already: nothing to judge
	}
	now := o.now()
	if o.behind+len(line) > o.limit || (o.behind > 0 && now.Sub(o.since) > o.slowAfter) {
		return false
	}
	if o.behind == 0 {
		o.since = now
	}
	o.lines = append(o.lines, line)
	o.behind += len(line)
	o.wake()
	return true
}

// close says no more lines will come: the writer writes what is queued,
// then ends. Closing twice does no harm.
func (o *outbox) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.wake()
}

func (o *outbox) wake() {
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

// take waits for lines and appends them to batch, up to maxBatch bytes
// (one line at least). It returns batch empty once the outbox is
// closed and every line taken.
func (o *outbox) take(batch []byte) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	for len(o.lines) == 0 && !o.closed {
		o.mu.Unlock()
		<-o.ready
		o.mu.Lock()
	}
	k := 0
	for k < len(o.lines) && (k == 0 || len(batch)+len(o.lines[k]) <= maxBatch) {
		batch = append(batch, o.lines[k]...)
		o.lines[k] = ""
		k++
	}
	o.lines = o.lines[k:]
	return batch
}

// wrote records that the writer finished writing n bytes: progress, so
// the clock of slowness starts again. After a failed write, lines go
// nowhere.
func (o *outbox) wrote(n int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.behind -= n
	o.since = o.now()
	if err != nil {
		o.failed, o.lines, o.behind = true, nil, 0
	}
}

// memberConn is a client's connection as readLines sees it. A line must
// be complete within r.idle of the one before it: a client that says
// nothing, or trickles bytes without ever ending a line, cannot keep its
// seat (and its slot under -max-conns) for ever.
type memberConn struct {
	*net.TCPConn
	ctx      context.Context
	idle     time.Duration
	lastLine time.Time // when the last line ended (or the client came)
	idled    bool      // the idle deadline ended a read
}

// Read reads with a deadline of idle after the last complete line.
func (m *memberConn) Read(p []byte) (int, error) {
	// Set before ctx is checked: if shutdown comes in between, its
	// wake-up deadline (in the past) replaces this one.
	m.SetReadDeadline(m.lastLine.Add(m.idle))
	if m.ctx.Err() != nil {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := m.TCPConn.Read(p)
	if bytes.IndexByte(p[:n], '\n') >= 0 {
		m.lastLine = time.Now()
	}
	if isTimeout(err) && m.ctx.Err() == nil {
		m.idled = true
	}
	return n, err
}

// addrCounts counts the open connections from each IP address, for
// -max-conns-per-ip, so that one address cannot take every slot.
type addrCounts struct {
	limit int // 0: no limit
	mu    sync.Mutex
	n     map[netip.Addr]int
}

// add counts conn in, unless its address has limit connections already.
func (a *addrCounts) add(conn *net.TCPConn) bool {
	if a.limit == 0 {
		return true
	}
	ip := ipOf(conn)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[ip] >= a.limit {
		return false
	}
	a.n[ip]++
	return true
}

// remove counts conn out.
func (a *addrCounts) remove(conn *net.TCPConn) {
	if a.limit == 0 {
		return
	}
	ip := ipOf(conn)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[ip]--; a.n[ip] <= 0 {
		delete(a.n, ip)
	}
}

// ipOf is the IP address conn comes from; an IPv4 client of an IPv6
// listener counts as its IPv4 address.
func ipOf(conn *net.TCPConn) netip.Addr {
	if tcp, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// refuse tells a client over the per-address cap why, with a short
// write deadline, and closes with FIN.
func refuse(conn *net.TCPConn, limit int) {
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(conn, "bye: too many connections from your address (limit %d), closing\n", limit)
	closeGracefully(conn)
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
