//go:build !solution

package main

import (
	"fmt"
	"time"
)

// ask sends msg as the next numbered request and returns the text of
// the reply that carries the same number. See README.md for the task.
//
// As it stands it is the lesson's client without its retries: it sends
// once, waits once, and takes whatever comes back, whatever its number.
func (c *client) ask(msg string) (string, error) {
	// TODO 1: number the request. c.seq is the number of the last
	// request sent (0 before the first); this one needs the next.
	request := encodeRequest(c.seq, msg)

	// TODO 2: retry with exponential backoff. Put the send and the wait
	// in a loop of c.retries+1 attempts. Wait c.timeout after the first
	// send, twice that after the second, and so on. Before each retry
	// log exactly (with fmt.Fprintf to c.log):
	//   no reply within 200ms; sending again (attempt 2 of 4)
	// After the last attempt return an error that wraps the timeout.
	if _, err := c.conn.Write(request); err != nil {
		return "", fmt.Errorf("send to %s: %w", c.conn.RemoteAddr(), err)
	}
	if err := c.conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return "", fmt.Errorf("set deadline: %w", err)
	}

	// TODO 3: filter the replies. Read in a loop, and return the text
	// only of a reply whose number is c.seq. Log any other datagram (a
	// late or duplicated reply, or garbage) as
	//   ignored a reply that is not to request 2: "1 hello"
	// and read again, without moving the deadline set above.
	buf := make([]byte, maxDatagram)
	n, err := c.conn.Read(buf)
	if err != nil {
		return "", err
	}
	_, text, _ := parseReply(buf[:n])
	return text, nil
}
