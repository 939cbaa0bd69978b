package main

// How a conversation ends, and how the server stops: the goodbye line,
// a close with FIN rather than RST, and the shutdown that waits at most
// -grace. The server itself is in main.go.

import (
	"errors"
	"io"
	"net"
	"time"
)

// goodbye tells the client why the server closes, then closes cleanly.
func (s *server) goodbye(conn *net.TCPConn, who, line, logLine string) {
	s.send(conn, []byte(line))
	closeGracefully(conn)
	s.log.Printf("client %s %s", who, logLine)
}

// hangUp closes a connection that failed and logs why.
func (s *server) hangUp(conn *net.TCPConn, who string, err error) {
	switch {
	case isReset(err):
		conn.Close()
		s.log.Printf("client %s reset the connection", who)
	case errors.Is(err, net.ErrClosed):
		s.log.Printf("client %s cut off at shutdown", who) // -grace was over
	case isTimeout(err):
		closeGracefully(conn) // the write deadline passed: it does not read
		s.log.Printf("client %s stopped reading, closed", who)
	default:
		conn.Close()
		s.log.Printf("client %s: %v", who, err)
	}
}

// closeGracefully ends a connection with FIN, not RST (which closing with
// unread input sends, and which may lose the replies already written): it
// says we are done writing, then discards what the client still sends
// until it closes too (at most 64 KB, or for a second).
func closeGracefully(conn *net.TCPConn) {
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(conn, 64<<10))
	conn.Close()
}

// shutdown tells the connection goroutines to say goodbye and waits for
// them. Connections still open at deadline (say, stuck writing to a
// client that does not read) are closed: that ends any Read or Write.
func (s *server) shutdown(deadline time.Time) {
	// A read deadline in the past wakes a goroutine parked in Read; it
	// finds ctx done and says goodbye. The server keeps every connection
	// in s.conns anyway, so waking them from there costs a client
	// nothing while it is served.
	s.mu.Lock()
	for conn := range s.conns {
		conn.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	grace := time.NewTimer(time.Until(deadline))
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
	}
	s.mu.Lock()
	s.log.Printf("grace period over, closing %d connections", len(s.conns))
	for conn := range s.conns {
		conn.Close()
	}
	s.mu.Unlock()
	<-done
}
