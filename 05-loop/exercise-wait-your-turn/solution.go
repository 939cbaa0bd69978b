//go:build solution

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// waitTurn connects to the server at addr, waits for its greeting, and
// reports how long each step took.
//
// The two times differ because the kernel, not the program, completes
// a TCP handshake: Dial returns as soon as the server's kernel has put
// the connection in the listener's backlog, whether or not the server
// is busy. The greeting comes only when the server calls Accept and
// gets to us. The server cannot tell how long we waited (nothing tells
// it when we connected); the client can.
func waitTurn(ctx context.Context, addr string, timeout time.Duration, stdout io.Writer) error {
	start := time.Now()
	dialer := net.Dialer{Timeout: timeout}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	connected := time.Now()
	fmt.Fprintf(stdout, "connected to %s after %v\n", conn.RemoteAddr(), connected.Sub(start).Round(time.Millisecond))

	// The deadline first, then the stop signal: if Ctrl+C came first,
	// its deadline of "now" must not be overwritten.
	if err := conn.SetReadDeadline(connected.Add(timeout)); err != nil {
		return err
	}
	stopConn := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stopConn()

	// A limit on what we read: a server that never sends a newline
	// must not fill our memory.
	greeting, err := bufio.NewReader(io.LimitReader(conn, 4096)).ReadString('\n')
	waited := time.Since(connected).Round(time.Millisecond)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stdout, "stopped waiting after %v\n", waited)
			return nil
		}
		return fmt.Errorf("wait for the greeting from %s: %w", addr, err)
	}
	fmt.Fprintf(stdout, "greeted after %v: %s", waited, greeting)
	return nil
}
