//go:build solution

package main

import (
	"fmt"
	"net"
	"time"
)

// greet tells the client where it is, as the server sees it, and where
// it reached the server.
//
// An accepted connection has two ends. RemoteAddr is the client's: its
// IP address and the port its kernel picked for it. LocalAddr is ours:
// the same port the listener has, because every connection Accept
// returns shares the listener's port; the kernel tells connections
// apart by the client's end.
func greet(conn net.Conn) error {
	// A client that never reads could leave Write waiting once the
	// buffers fill; two short lines will not, but the habit is cheap.
	if err := conn.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	_, err := fmt.Fprintf(conn, "you are %s\nI am %s\n", conn.RemoteAddr(), conn.LocalAddr())
	if err != nil {
		return fmt.Errorf("write to %s: %w", conn.RemoteAddr(), err)
	}
	return nil
}
