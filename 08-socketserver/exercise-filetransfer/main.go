// Exercise 08-socketserver/exercise-filetransfer: send a file over TCP
// with a header that carries its name, size and SHA-256 checksum, and
// receive it safely: no writing outside the target directory, no file
// larger than the limit, no file whose checksum does not match.
//
// This file is the part you do not write: flags, the accept loop, the
// sender, the header's writer and the inbox (the error messages are in
// errors.go). Your part is the receiving side, in starter.go:
// readHeader, checkName and receive.
//
// Run it:
//
//	go run ./08-socketserver/exercise-filetransfer -dir inbox          # receiver
//	go run ./08-socketserver/exercise-filetransfer -send hello.txt     # sender
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
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

// run is the whole program: the receiver, or with -send the sender.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("exercise-filetransfer", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9008", "`host:port` to listen on, or to send to with -send")
	dir := flags.String("dir", "", "receiver: the `directory` to save files in (created if missing)")
	maxSize := flags.Int64("max-size", 64<<20, "receiver: the largest file accepted, in `bytes`")
	maxTotal := flags.Int64("max-total", 1<<30, "receiver: the most `bytes` the directory may hold; each file counts at least 4096")
	maxConns := flags.Int("max-conns", 200, "receiver: how many senders are served at once; more wait in the backlog")
	maxPerIP := flags.Int("max-conns-per-ip", 100, "receiver: how many of those may come from one IP address; more are told so and closed (0: no limit)")
	send := flags.String("send", "", "send this `file` to the receiver at -addr")
	as := flags.String("as", "", "with -send: the `name` to send instead of the file's own")
	idle := flags.Duration("idle-timeout", 30*time.Second, "give up on a peer that sends or reads nothing for this long")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if flags.NArg() > 0 || *maxSize < 0 || *maxTotal < 0 || *idle <= 0 || *maxConns < 1 || *maxPerIP < 0 || (*send == "") == (*dir == "") {
		fmt.Fprintln(stderr, "give -dir to receive or -send to send (not both), no arguments; -max-size, -max-total and -max-conns-per-ip must not be negative, -idle-timeout must be positive, -max-conns at least 1")
		flags.Usage()
		return errUsage
	}

	// A port without a host is caught before anything is read or made.
	if err := checkHostPort(*addr); err != nil {
		if *send != "" {
			return fmt.Errorf("connect to %s: %w", *addr, err)
		}
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}

	if *send != "" {
		sent, err := sendFile(ctx, *addr, *send, *as, *idle)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "sent %q: %d bytes, sha256 %s\n", sent.name, sent.size, hex.EncodeToString(sent.sum[:]))
		return nil
	}

	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("create the target directory: %w", err)
	}
	rc, err := newReceiver(*dir, *maxSize, *maxTotal)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	limits := connLimits{max: *maxConns, perIP: &addrCounts{limit: *maxPerIP, n: make(map[netip.Addr]int)}}
	if err := serve(ctx, ln, rc, *idle, limits, stdout); err != nil {
		// The listener broke for good: exit non-zero, so that a
		// supervisor that restarts failed services restarts this one.
		return err
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

// ---- the wire format ----

// A transfer is one header, then the file's bytes, on one connection:
//
//	2 bytes   name length N, big-endian, 1 to maxName
//	N bytes   the name, a plain file name (see checkName)
//	8 bytes   the size S in bytes, big-endian
//	32 bytes  the SHA-256 of the S bytes that follow
//	S bytes   the file
//
// The receiver answers with one line: "ok\n", or "error: <reason>\n".
const maxName = 255

// header is what precedes the file's bytes.
type header struct {
	name string
	size uint64
	sum  [sha256.Size]byte
}

// writeHeader sends h in the layout above. Reading it back is your part:
// readHeader, in starter.go.
func writeHeader(w io.Writer, h header) error {
	if len(h.name) < 1 || len(h.name) > maxName {
		return fmt.Errorf("%w: %d bytes long, want 1 to %d", errBadName, len(h.name), maxName)
	}
	buf := make([]byte, 0, 2+len(h.name)+8+sha256.Size)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(h.name)))
	buf = append(buf, h.name...)
	buf = binary.BigEndian.AppendUint64(buf, h.size)
	buf = append(buf, h.sum[:]...)
	_, err := w.Write(buf)
	return err
}

// errRefused marks the receiver's "error: ..." answer in the sender's
// error. The receiver's reasons are yours to return (starter.go).
var errRefused = errors.New("refused by the receiver")

// receiver saves the files it is sent in dir, none larger than maxSize,
// and never more than maxTotal bytes in all.
type receiver struct {
	dir      string
	maxSize  int64
	maxTotal int64

	mu     sync.Mutex
	used   int64           // bytes in dir, and set aside for transfers under way
	taking map[string]bool // names being received right now
}

// Errors of the inbox itself, which claim and publish return.
var (
	errExists    = errors.New("file exists")
	errInboxFull = errors.New("inbox full")
)

// minFileCost is what one file costs the inbox at least: a block on
// disk. So a flood of empty files fills the inbox too.
const minFileCost = 4096

// newReceiver returns a receiver for dir, counting what dir holds
// already. The count then follows what the receiver saves; files that
// someone else adds or removes count from the next start.
func newReceiver(dir string, maxSize, maxTotal int64) (*receiver, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read the target directory: %w", err)
	}
	rc := &receiver{dir: dir, maxSize: maxSize, maxTotal: maxTotal, taking: make(map[string]bool)}
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			rc.used += max(info.Size(), minFileCost)
		}
	}
	return rc, nil
}

// claim sets name and size bytes of the inbox aside for one transfer,
// before any of its bytes arrive. It refuses a name that is taken (a
// file exists, or another sender is sending that name right now) with
// errExists, and a file that would fill the inbox past maxTotal with
// errInboxFull. Call done once the transfer ends, kept saying whether
// the file was saved: its bytes then stay counted.
func (rc *receiver) claim(name string, size uint64) (done func(kept bool), err error) {
	cost := max(int64(min(size, uint64(rc.maxTotal)+1)), minFileCost)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if _, err := os.Lstat(filepath.Join(rc.dir, name)); err == nil || rc.taking[name] {
		return nil, fmt.Errorf("%w: %q was received before; send it under another name", errExists, name)
	}
	if rc.used+cost > rc.maxTotal {
		return nil, fmt.Errorf("%w: %d more bytes would pass the limit of %d bytes", errInboxFull, size, rc.maxTotal)
	}
	rc.used += cost
	rc.taking[name] = true
	return func(kept bool) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		delete(rc.taking, name)
		if !kept {
			rc.used -= cost
		}
	}, nil
}

// publish gives the finished temporary file at tmp its real name in
// rc.dir. It never replaces a file: os.Link fails if the name exists,
// where os.Rename would silently overwrite it. tmp stays; the caller
// removes it.
func (rc *receiver) publish(tmp, name string) error {
	err := os.Link(tmp, filepath.Join(rc.dir, name))
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %q was received before; send it under another name", errExists, name)
	}
	if err != nil {
		return fmt.Errorf("save %q: %w", name, err)
	}
	return nil
}

// nameTrouble says why a name that stays inside the directory would
// still hurt or fool whoever handles the file later, or returns nil:
//
//   - a character of Unicode category Cc (controls, C0 and C1 alike:
//     U+0085, U+009B), Cf (invisible formatting, such as U+202E, which
//     shows "\u202etxt.exe" as "exe.txt"), Zl or Zp (U+2028, U+2029:
//     line breaks in many tools);
//   - a leading "-" (read as an option: rm -x), a leading or trailing
//     space, a trailing dot (Windows drops both, so two names meet);
//   - a character that Windows forbids in names (< > : " | ? *) or that
//     a shell expands even inside double quotes ($ and `).
//
// The rest of ASCII and of Unicode is allowed: "report (1).txt", "a;b"
// and "naïve café.txt" are names, and quoting them is the reader's job.
func nameTrouble(name string) error {
	for _, r := range name {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			return fmt.Errorf("character %U is invisible or a control", r)
		}
	}
	switch {
	case strings.HasPrefix(name, "-"):
		return errors.New("it starts with -")
	case strings.HasPrefix(name, " ") || strings.HasSuffix(name, " ") || strings.HasSuffix(name, "."):
		return errors.New("it starts or ends with a space, or ends with a dot")
	case strings.ContainsAny(name, "<>:\"|?*$`"):
		return errors.New("it has a character Windows or a shell treats specially")
	}
	return nil
}

// ---- the receiving server ----

// connLimits bounds the senders served at once: max in all, and
// perIP.limit from one IP address.
type connLimits struct {
	max   int
	perIP *addrCounts
}

// serve accepts senders until ctx ends, each in its own goroutine, then
// closes their connections and waits for them. It returns nil after ctx
// ends, and an error only if the listener is closed under it.
func serve(ctx context.Context, ln net.Listener, rc *receiver, idle time.Duration, limits connLimits, log io.Writer) error {
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()
	defer ln.Close()
	var mu sync.Mutex // one log line at a time
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(log, format, args...)
	}
	var handlers sync.WaitGroup
	defer handlers.Wait()
	// slots is a semaphore, as in lesson 06: a slot is taken before
	// Accept and given back when the sender leaves. With every slot
	// taken, new senders wait in the kernel's backlog.
	slots := make(chan struct{}, limits.max)
	failures := 0 // Accept errors in a row, for the back-off below
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		conn, err := ln.Accept()
		if err != nil {
			<-slots
			switch {
			case ctx.Err() != nil:
				return nil // Ctrl+C closed the listener
			case errors.Is(err, net.ErrClosed):
				return fmt.Errorf("accept: %w", err)
			}
			// Any other failure is passing: above all "too many open
			// files" (EMFILE). The sender stays in the backlog, so an
			// immediate retry fails again and the loop would spin:
			// wait longer after each failure, up to a second, and log
			// only the first of a streak. The lesson does the same.
			failures++
			if failures == 1 {
				logf("accept failed, retrying with back-off: %s\n", explain(err))
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
			logf("accepting again after %d failed attempts\n", failures)
			failures = 0
		}
		handlers.Add(1)
		if !limits.perIP.add(conn) {
			// Over the cap for its address: it takes no slot, and is
			// told why in a goroutine of its own, so that a sender that
			// does not read cannot hold up the loop.
			<-slots
			logf("refused %s: %d connections from its address already\n", conn.RemoteAddr(), limits.perIP.limit)
			go func() {
				defer handlers.Done()
				conn.SetWriteDeadline(time.Now().Add(time.Second))
				fmt.Fprintf(conn, "bye: too many connections from your address (limit %d), closing\n", limits.perIP.limit)
				closeGracefully(conn)
			}()
			continue
		}
		go func() {
			defer handlers.Done()
			defer func() { <-slots }()
			defer limits.perIP.remove(conn)
			stopConn := context.AfterFunc(ctx, func() { conn.Close() })
			defer stopConn()
			h, err := rc.receive(&idleConn{Conn: conn, idle: idle})
			// The name is the sender's: the log shows at most 32 of its
			// bytes, so a log line never costs much more than it.
			if err != nil {
				logf("refused a file from %s: %s\n", conn.RemoteAddr(), boundName(err.Error(), h.name))
			} else {
				logf("received %s from %s: %d bytes, sha256 ok\n", quoteBounded(h.name), conn.RemoteAddr(), h.size)
			}
			closeGracefully(conn)
		}()
	}
}

// logBytes is how many of a sender's bytes one log line shows at most.
const logBytes = 32

// quoteBounded quotes name for the log: escaped as Go does with %q, and
// cut after logBytes bytes with the full length said.
func quoteBounded(name string) string {
	if len(name) <= logBytes {
		return strconv.Quote(name)
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(name[:logBytes]), len(name))
}

// boundName replaces the quoted name inside a reason by its bounded
// form.
func boundName(reason, name string) string {
	if len(name) <= logBytes {
		return reason
	}
	return strings.ReplaceAll(reason, strconv.Quote(name), quoteBounded(name))
}

// addrCounts counts the open connections from each IP address, for
// -max-conns-per-ip, so that one address cannot take every slot.
type addrCounts struct {
	limit int // 0: no limit
	mu    sync.Mutex
	n     map[netip.Addr]int
}

// add counts conn in, unless its address has limit connections already.
func (a *addrCounts) add(conn net.Conn) bool {
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
func (a *addrCounts) remove(conn net.Conn) {
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
func ipOf(conn net.Conn) netip.Addr {
	if tcp, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// idleConn gives every Read and Write a fresh deadline, as the lesson's
// serverConn does: a large file may take long, a silent peer may not.
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

// closeGracefully ends a connection with a FIN rather than a reset, so
// the sender gets our last line even when we refused its file before
// reading all of it: say we are done writing, discard what still comes
// (for half a second at most), then close.
func closeGracefully(conn net.Conn) {
	if tcp, ok := conn.(interface{ CloseWrite() error }); ok {
		tcp.CloseWrite()
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	}
	conn.Close()
}

// ---- the sender ----

// sendFile sends the file at path to addr, under the name as (or the
// file's own name), and waits for the receiver's answer.
func sendFile(ctx context.Context, addr, path, as string, idle time.Duration) (header, error) {
	f, err := os.Open(path)
	if err != nil {
		return header{}, err
	}
	defer f.Close()

	// The checksum comes first in the header, so the file is read
	// twice: once to hash it, once to send it.
	sum := sha256.New()
	size, err := io.Copy(sum, f)
	if err != nil {
		return header{}, fmt.Errorf("read %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return header{}, err
	}
	h := header{name: as, size: uint64(size)}
	if h.name == "" {
		h.name = filepath.Base(path)
	}
	copy(h.sum[:], sum.Sum(nil))

	dialer := net.Dialer{Timeout: 5 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return h, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	// Listen for the answer while sending: a receiver that refuses the
	// header answers at once and hangs up, and its reason is worth more
	// than the "connection reset" our next write would get.
	type answer struct {
		line string
		err  error
	}
	answers := make(chan answer, 1)
	go func() {
		line, err := bufio.NewReaderSize(conn, 512).ReadString('\n')
		answers <- answer{line, err}
	}()

	w := &idleConn{Conn: conn, idle: idle}
	sendErr := writeHeader(w, h)
	if sendErr == nil {
		_, sendErr = io.CopyN(w, f, size)
	}
	if sendErr == nil {
		sendErr = conn.(*net.TCPConn).CloseWrite()
	}
	// The answer may take as long as the receiver needs to check the
	// file; a deadline set now also applies to the read under way.
	conn.SetReadDeadline(time.Now().Add(idle))
	a := <-answers

	reason, refused := strings.CutPrefix(a.line, "error: ")
	if bye, ok := strings.CutPrefix(a.line, "bye: "); ok {
		reason, refused = bye, true // turned away before the header
	}
	switch {
	case refused:
		return h, fmt.Errorf("%w: %s", errRefused, strings.TrimSuffix(reason, "\n"))
	case sendErr != nil:
		return h, fmt.Errorf("send to %s: %w", addr, sendErr)
	case a.err != nil:
		return h, fmt.Errorf("read the answer from %s: %w", addr, a.err)
	case a.line != "ok\n":
		return h, fmt.Errorf("the receiver answered %q, not ok: is it this program?", a.line)
	}
	return h, nil
}
