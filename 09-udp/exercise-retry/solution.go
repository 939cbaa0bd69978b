//go:build solution

package main

import (
	"fmt"
	"time"
)

// ask sends msg as the next numbered request and returns the text of
// the reply that carries the same number.
//
// UDP loses datagrams and nothing says so, so each attempt waits with a
// deadline; when it passes, ask sends the same request again (same
// number) and waits twice as long. A reply with another number is a
// late or duplicated answer to an earlier request: it is thrown away,
// and the wait goes on until the same deadline, so a stream of such
// replies cannot keep the client waiting for ever.
func (c *client) ask(msg string) (string, error) {
	c.seq++
	request := encodeRequest(c.seq, msg)
	buf := make([]byte, maxDatagram)
	attempts := c.retries + 1
	wait := c.timeout
	for attempt := 1; ; attempt++ {
		// A datagram is sent whole or not at all: no sendall needed.
		if _, err := c.conn.Write(request); err != nil {
			return "", fmt.Errorf("send to %s: %w", c.conn.RemoteAddr(), err)
		}
		// One deadline per attempt, set once: replies thrown away
		// below do not move it.
		if err := c.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
			return "", fmt.Errorf("set deadline: %w", err)
		}
		text, err := c.awaitReply(buf)
		switch {
		case err == nil:
			return text, nil
		case !isTimeout(err):
			return "", err
		case attempt == attempts:
			return "", fmt.Errorf("no reply to request %d from %s after %d attempts: %w",
				c.seq, c.conn.RemoteAddr(), attempts, err)
		}
		fmt.Fprintf(c.log, "no reply within %v; sending again (attempt %d of %d)\n",
			wait, attempt+1, attempts)
		// Exponential backoff: a network that lost one datagram may be
		// busy, so give it more time, not more traffic.
		wait *= 2
	}
}

// awaitReply reads datagrams until one answers request c.seq, or the
// read deadline passes.
func (c *client) awaitReply(buf []byte) (string, error) {
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			return "", err
		}
		seq, text, ok := parseReply(buf[:n])
		if ok && seq == c.seq {
			return text, nil
		}
		fmt.Fprintf(c.log, "ignored a reply that is not to request %d: %q\n", c.seq, buf[:n])
	}
}
