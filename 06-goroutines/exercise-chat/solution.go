//go:build solution

// The reference solution: compare it with your starter.go once your
// tests pass, or when you are stuck.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
)

// broadcast is the broadcaster goroutine. It alone owns the set of
// members: every join, message and departure reaches it through a
// channel, one at a time, so the set needs no lock. It returns when stop
// is closed.
func (r *room) broadcast(stop <-chan struct{}) {
	members := make(map[*client]bool)

	// drop removes a member and closes its outbox: its writer goroutine
	// writes what is still queued, then ends.
	drop := func(c *client) {
		delete(members, c)
		c.outbox.close()
	}

	// announce queues line for every member except skip. It never
	// waits: put refuses the line of a member that is too slow for the
	// room. That member is dropped, its connection closed at once (it
	// would never read what is queued anyway), and the others are told.
	var announce func(line string, skip *client)
	announce = func(line string, skip *client) {
		var slow []*client
		for c := range members {
			if c != skip && !c.outbox.put(line) {
				slow = append(slow, c)
			}
		}
		for _, c := range slow {
			drop(c)
			c.conn.Close()
			r.log.Printf("client %s too slow, dropped", c.addr)
		}
		for _, c := range slow {
			announce("* "+c.addr+" left (too slow)\n", nil)
		}
	}

	for {
		select {
		case c := <-r.joins:
			members[c] = true
			// The outbox is new and empty, so this always fits.
			c.outbox.put("* welcome, you are " + c.addr + "\n")
			announce("* "+c.addr+" joined\n", c)

		case m := <-r.messages:
			// A client dropped for being slow may still have lines on
			// their way; they go nowhere.
			if !members[m.from] {
				continue
			}
			announce("["+m.from.addr+"] "+m.text+"\n", m.from)

		case d := <-r.leaves:
			if !members[d.who] {
				continue // already dropped
			}
			if d.farewell != "" {
				// The last line for the leaver, if it is not too slow
				// to take it.
				d.who.outbox.put(d.farewell)
			}
			drop(d.who)
			announce("* "+d.who.addr+" left\n", nil)

		case <-stop:
			return
		}
	}
}

// readLines reads c's lines and hands each to the broadcaster, until the
// client leaves, sends a line longer than r.maxLine, or the server shuts
// down. It returns the farewell line for c, or "".
func (r *room) readLines(ctx context.Context, c *client) string {
	lines := bufio.NewScanner(c.conn)
	// The buffer never grows past r.maxLine plus "\r\n": a longer line
	// stops the scanner with bufio.ErrTooLong instead of eating memory.
	lines.Buffer(make([]byte, 0, min(r.maxLine+2, 4096)), r.maxLine+2)
	for lines.Scan() {
		// telnet ends its lines with "\r\n", nc with "\n".
		text := strings.TrimSuffix(lines.Text(), "\r")
		if len(text) > r.maxLine {
			return tooLong(r.maxLine)
		}
		if text == "" {
			continue // an empty line says nothing to the room
		}
		r.messages <- message{from: c, text: text}
	}
	switch {
	case ctx.Err() != nil:
		// Shutdown set a read deadline in the past to wake us.
		return "* server shutting down\n"
	case errors.Is(lines.Err(), bufio.ErrTooLong):
		return tooLong(r.maxLine)
	}
	// io.EOF (the client left) makes lines.Err() nil; a reset or a
	// connection closed by the broadcaster ends the client just the same.
	return ""
}

// tooLong is the farewell of a client whose line is over the limit.
func tooLong(maxLine int) string {
	return fmt.Sprintf("* line too long (max %d bytes), closing\n", maxLine)
}
