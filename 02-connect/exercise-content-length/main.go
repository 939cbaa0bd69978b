// Exercise: read an HTTP reply's body, exactly Content-Length bytes.
//
// Lesson 02 read the head of a reply, up to the blank line, and left the
// body unread. The body has no end marker: the head says how long it is,
// in its Content-Length header, and the reader must take exactly that
// many bytes from the stream. The part you write, readBody, is in
// starter.go; this file connects, sends the request and reads the head.
//
// Run it:
//
//	go run ./02-connect/exercise-content-length -host 127.0.0.1 -port 8080
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
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

// run connects, sends a GET, and prints the reply's head and its body.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("content-length", flag.ContinueOnError)
	flags.SetOutput(stderr)
	host := flags.String("host", "example.com", "host `name` or IP address of the web server")
	port := flags.Int("port", 80, "TCP `port` of the web server")
	timeout := flags.Duration("timeout", 5*time.Second, "limit for connecting, and for the whole reply")
	limit := flags.Int64("max", 1<<20, "the largest body, in `bytes`, this program will read")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if flags.NArg() > 0 || *port < 1 || *port > 65535 || *timeout <= 0 || *limit < 0 {
		fmt.Fprintln(stderr, "want -port from 1 to 65535, a positive -timeout, a -max of 0 or more, and no arguments")
		flags.Usage()
		return errUsage
	}

	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	dialer := net.Dialer{Timeout: *timeout}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()
	if err := conn.SetDeadline(time.Now().Add(*timeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}

	host80 := *host
	if *port != 80 {
		host80 = addr
	}
	request := "GET / HTTP/1.1\r\nHost: " + host80 + "\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, request); err != nil {
		return fmt.Errorf("send request to %s: %w", addr, err)
	}

	// One bufio.Reader serves the head and the body: it may already
	// hold the first bytes of the body when the head is read.
	br := bufio.NewReader(conn)
	head, err := readHead(br)
	if err != nil {
		return fmt.Errorf("read reply head from %s: %w", addr, err)
	}
	for _, line := range head {
		fmt.Fprintf(stdout, "< %s\n", line)
	}
	body, err := readBody(br, head, *limit)
	if err != nil {
		return fmt.Errorf("read reply body from %s: %w", addr, err)
	}
	fmt.Fprintf(stdout, "body: %d bytes\n", len(body))
	_, err = stdout.Write(body)
	return err
}

// maxHead bounds the reply's head, as in lesson 02.
const maxHead = 16 << 10

var (
	errHeadTooLarge = fmt.Errorf("the reply head is larger than %d KiB", maxHead>>10)
	errNotHTTP      = errors.New("the reply is not HTTP")

	// The errors readBody returns, wrapped with details.
	errNoLength     = errors.New("the reply has no Content-Length header")
	errBadLength    = errors.New("invalid Content-Length")
	errBodyTooLarge = errors.New("the body is larger than the limit")
	errBodyCut      = errors.New("the server closed the connection before the end of the body")
)

// readHead reads the status line and the headers, up to the blank line,
// and returns them without their line endings. It reads no byte past the
// blank line: what follows stays in br for the body.
func readHead(br *bufio.Reader) ([]string, error) {
	var lines []string
	size := 0
	for {
		// ReadSlice stops with bufio.ErrBufferFull at a line longer
		// than br's buffer, so one endless line cannot grow memory.
		raw, err := br.ReadSlice('\n')
		size += len(raw)
		switch {
		case errors.Is(err, bufio.ErrBufferFull) || size > maxHead:
			return lines, errHeadTooLarge
		case errors.Is(err, io.EOF):
			return lines, io.ErrUnexpectedEOF
		case err != nil:
			return lines, err
		}
		line := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
		if len(lines) == 0 && !strings.HasPrefix(line, "HTTP/") {
			return nil, fmt.Errorf("%w: its first line is %q", errNotHTTP, line)
		}
		if line == "" {
			return lines, nil
		}
		lines = append(lines, line)
	}
}
