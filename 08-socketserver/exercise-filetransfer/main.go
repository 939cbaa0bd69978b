// Exercise 08-socketserver/exercise-filetransfer: send a file over TCP
// with a header that carries its name, size and SHA-256 checksum, and
// receive it safely: no writing outside the target directory, no file
// larger than the limit, no file whose checksum does not match.
//
// This file is the part you do not write: flags, the accept loop, the
// sender, the header's writer and the error messages. Your part is the
// receiving side, in starter.go: readHeader, checkName and receive.
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
	"net"
	"os"
	"os/signal"
	"path/filepath"
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

// run is the whole program: the receiver, or with -send the sender.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("exercise-filetransfer", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9008", "`host:port` to listen on, or to send to with -send")
	dir := flags.String("dir", "", "receiver: the `directory` to save files in (created if missing)")
	maxSize := flags.Int64("max-size", 64<<20, "receiver: the largest file accepted, in `bytes`")
	send := flags.String("send", "", "send this `file` to the receiver at -addr")
	as := flags.String("as", "", "with -send: the `name` to send instead of the file's own")
	idle := flags.Duration("idle-timeout", 30*time.Second, "give up on a peer that sends or reads nothing for this long")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if flags.NArg() > 0 || *maxSize < 0 || *idle <= 0 || (*send == "") == (*dir == "") {
		fmt.Fprintln(stderr, "give -dir to receive or -send to send (not both), no arguments; -max-size must not be negative, -idle-timeout must be positive")
		flags.Usage()
		return errUsage
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
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	serve(ctx, ln, &receiver{dir: *dir, maxSize: *maxSize}, *idle, stdout)
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

// receiver saves the files it is sent in dir, none larger than maxSize.
type receiver struct {
	dir     string
	maxSize int64
}

// ---- the receiving server ----

// serve accepts senders until ctx ends, each in its own goroutine, then
// closes their connections and waits for them.
func serve(ctx context.Context, ln net.Listener, rc *receiver, idle time.Duration, log io.Writer) {
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()
	defer ln.Close()
	var mu sync.Mutex // one log line at a time
	var handlers sync.WaitGroup
	defer handlers.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(log, "accept: %v\n", err)
			}
			return
		}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			stopConn := context.AfterFunc(ctx, func() { conn.Close() })
			defer stopConn()
			h, err := rc.receive(&idleConn{Conn: conn, idle: idle})
			mu.Lock()
			if err != nil {
				fmt.Fprintf(log, "refused a file from %s: %v\n", conn.RemoteAddr(), err)
			} else {
				fmt.Fprintf(log, "received %q from %s: %d bytes, sha256 ok\n", h.name, conn.RemoteAddr(), h.size)
			}
			mu.Unlock()
			closeGracefully(conn)
		}()
	}
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

	switch reason, refused := strings.CutPrefix(a.line, "error: "); {
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

// ---- errors ----

// Winsock's numbers differ from the syscall.E* values Go defines on
// Windows, so each cause is checked both ways.
const (
	wsaEADDRINUSE   = syscall.Errno(10048)
	wsaECONNRESET   = syscall.Errno(10054)
	wsaECONNREFUSED = syscall.Errno(10061)
)

// explain turns an error into the one line a learner sees.
func explain(err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, wsaECONNREFUSED):
		return fmt.Sprintf("%v: nothing listens at that address; is the receiver running? (see docs/errors.md#econnrefused)", err)
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, wsaECONNRESET):
		return fmt.Sprintf("%v: the peer aborted the connection (see docs/errors.md#econnreset)", err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%v: the receiver hung up without an answer (see docs/errors.md#eof)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer in time (see docs/errors.md#timeout)", err)
	}
	return err.Error()
}

// isTimeout reports a deadline that passed.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
