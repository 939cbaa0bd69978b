// Lesson 02-connect: resolve a host, connect, send an HTTP GET, print
// the reply's head, close.
//
// A client needs three things from the system: the IP addresses behind a
// host name (resolving), a TCP connection to one of them (connecting),
// and then plain reads and writes. This program does each step on its
// own and says what happened, so a failure names the step that failed:
// an unknown host, a refused port, or a server that does not answer.
//
// This file is the client itself. cli.go has main and the flags,
// errors.go the one-line explanations.
//
// Run it:
//
//	go run ./02-connect                             # example.com, port 80: needs the internet
//	go run ./02-connect -host 127.0.0.1 -port 8080  # a local server
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// fetchHead does the whole exchange: resolve, connect, send, receive,
// close. Each step wraps its error with the step's name.
func fetchHead(ctx context.Context, host string, port int, timeout time.Duration, stdout io.Writer) error {
	// Step 1: resolve the name, like Python's getaddrinfo. A name can
	// have several addresses, IPv4 and IPv6; an IP address resolves to
	// itself without asking anyone.
	addrs, err := resolve(ctx, host, timeout)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	fmt.Fprintf(stdout, "%s resolves to:\n", host)
	for _, a := range addrs {
		fmt.Fprintf(stdout, "  %s\n", a.String())
	}

	// Step 2: connect to the first address that answers.
	conn, err := connectFirst(ctx, addrs, port, timeout, stdout)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
	}
	defer conn.Close()
	fmt.Fprintf(stdout, "connected to %s from %s\n", conn.RemoteAddr(), conn.LocalAddr())

	// Ctrl+C while we wait for the server closes the connection, which
	// wakes up the blocked Read.
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	// One deadline covers sending the request and reading the reply's
	// head, so a server that accepts and then says nothing cannot keep
	// us waiting forever. It is Python's settimeout, as a point in time.
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}

	// Step 3: send an HTTP request. HTTP/1.1 needs the Host header (one
	// IP address can serve many sites); "Connection: close" asks the
	// server to close after its reply instead of waiting for more.
	request := []string{
		"GET / HTTP/1.1",
		"Host: " + hostHeader(host, port),
		"Connection: close",
	}
	for _, line := range request {
		fmt.Fprintf(stdout, "> %s\n", line)
	}
	// Write sends every byte or returns an error: it is Python's
	// sendall, not send. A blank line ends the request's head.
	wire := strings.Join(request, "\r\n") + "\r\n\r\n"
	if _, err := io.WriteString(conn, wire); err != nil {
		return fmt.Errorf("send request to %s: %w", conn.RemoteAddr(), err)
	}

	// Step 4: receive the reply's head: the status line and the headers,
	// up to the blank line. One recv(4096), as in the article, may return
	// less than the head or more; reading line by line does not care.
	head, err := readHead(conn)
	for _, line := range head {
		fmt.Fprintf(stdout, "< %s\n", line)
	}
	if err != nil {
		return fmt.Errorf("read reply head from %s: %w", conn.RemoteAddr(), err)
	}

	// Step 5: close. The body, if any, is left unread.
	fmt.Fprintln(stdout, "closed the connection; the body was not read")
	return nil
}

// resolve asks the system's resolver for the addresses of host, with a
// time limit.
func resolve(ctx context.Context, host string, timeout time.Duration) ([]net.IPAddr, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return net.DefaultResolver.LookupIPAddr(ctx, host)
}

// connectFirst tries each address in turn and returns the first
// connection that succeeds, as Python's create_connection does. Each
// attempt has its own timeout; a failure is printed and the next address
// is tried. If all fail, the last error is returned.
func connectFirst(ctx context.Context, addrs []net.IPAddr, port int, timeout time.Duration, stdout io.Writer) (net.Conn, error) {
	dialer := net.Dialer{Timeout: timeout}
	lastErr := errors.New("no addresses to connect to")
	for i, a := range addrs {
		target := net.JoinHostPort(a.String(), strconv.Itoa(port))
		fmt.Fprintf(stdout, "connecting to %s (timeout %v)\n", target, timeout)
		conn, err := dialer.DialContext(ctx, "tcp", target)
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break // interrupted: do not try the others
		}
		// The last failure becomes the program's error; the others
		// are only reported on the way.
		if i < len(addrs)-1 {
			fmt.Fprintf(stdout, "  failed: %v\n  trying the next address\n", err)
		}
	}
	return nil, lastErr
}

// hostHeader is the value of the Host header: the name the user typed,
// with the port when it is not HTTP's default, 80.
func hostHeader(host string, port int) string {
	if port == 80 && !strings.Contains(host, ":") {
		return host
	}
	// JoinHostPort puts an IPv6 address in brackets: [::1]:8080.
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// maxHead bounds the reply's head. Real heads are a few hundred bytes;
// a server that sends more without a blank line is broken or hostile,
// and must not make this program's memory grow.
const maxHead = 16 << 10

var (
	errHeadTooLarge = fmt.Errorf("the reply head is larger than %d KiB", maxHead>>10)
	errNotHTTP      = errors.New("the reply is not HTTP")
	errHeadCut      = errors.New("the server closed the connection before the end of the head")
)

// readHead reads lines up to the blank line that ends an HTTP head and
// returns them without their line endings. It returns the lines read so
// far together with any error, so a caller can show what did arrive.
func readHead(conn io.Reader) ([]string, error) {
	// The LimitedReader stops after maxHead bytes, so a server that
	// never sends the blank line cannot make us buffer without end.
	limited := &io.LimitedReader{R: conn, N: maxHead}
	r := bufio.NewReader(limited)
	var lines []string
	for {
		line, err := r.ReadString('\n')
		switch {
		case errors.Is(err, io.EOF) && limited.N == 0:
			return lines, errHeadTooLarge
		case errors.Is(err, io.EOF):
			return lines, fmt.Errorf("%w: %w", errHeadCut, io.ErrUnexpectedEOF)
		case err != nil:
			return lines, err
		}
		// HTTP ends lines with "\r\n"; accept a bare "\n" too.
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if len(lines) == 0 && !isStatusLine(line) {
			return nil, fmt.Errorf("%w: its first line is %q", errNotHTTP, shorten(line))
		}
		if line == "" {
			return lines, nil
		}
		lines = append(lines, line)
	}
}

// isStatusLine reports whether line looks like "HTTP/1.1 200 OK".
func isStatusLine(line string) bool {
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/") || len(rest) < 3 {
		return false
	}
	for _, c := range rest[:3] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// shorten keeps an error message to one readable line.
func shorten(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
