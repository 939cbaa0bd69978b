package main

import (
	"io"
	"net"
	"time"
)

// closeGracefully says last words (if any), then ends the connection
// with a FIN, not a reset: closing a socket with unread input makes the
// kernel send RST, and the client may lose the last line. So: write it,
// CloseWrite, discard what the client still sends until it closes too
// (or the time is up), then close.
func closeGracefully(conn net.Conn, last string, within time.Duration) {
	conn.SetDeadline(time.Now().Add(within))
	if last != "" {
		if _, err := io.WriteString(conn, last); err != nil {
			return // the client is gone; the deferred Close is enough
		}
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	conn.Close()
}
