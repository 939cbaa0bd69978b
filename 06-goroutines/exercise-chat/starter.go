//go:build !solution

// Your work: the two functions below. Run the tests with
//
//	go test -tags exercise ./06-goroutines/exercise-chat/
//
// They fail until the room does what README.md asks. As given, the room
// runs and announces arrivals, but every line goes back to everyone,
// its sender included, nobody hears of departures, and a client that
// does not read stays in the room for ever, hearing nothing.
package main

import (
	"bufio"
	"context"
)

// broadcast is the broadcaster goroutine. It alone owns the set of
// members: every join, message and departure reaches it through a
// channel, one at a time, so the set needs no lock. It returns when stop
// is closed.
func (r *room) broadcast(stop <-chan struct{}) {
	members := make(map[*client]bool)
	for {
		select {
		case c := <-r.joins:
			members[c] = true
			// The outbox is new and empty, so this always fits.
			c.outbox.put("* welcome, you are " + c.addr + "\n")
			// Every other member hears of the newcomer. (put never
			// waits, but it may refuse: see the TODOs below.)
			for other := range members {
				if other != c {
					other.outbox.put("* " + c.addr + " joined\n")
				}
			}

		case m := <-r.messages:
			// TODO: send the line to every member EXCEPT its sender.
			// TODO: put returns false for a member that is too slow
			// (it never waits to say so): remove that member, close
			// its outbox and its connection, and tell the others
			// "* ADDR left (too slow)".
			// TODO: ignore a message from a client no longer a member.
			for c := range members {
				c.outbox.put("[" + m.from.addr + "] " + m.text + "\n")
			}

		case d := <-r.leaves:
			// TODO: ignore a departure of a client no longer a member.
			// TODO: queue d.farewell for the leaver, if it is not "".
			delete(members, d.who)
			d.who.outbox.close()
			// TODO: tell the remaining members "* ADDR left".

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
	// TODO: bound the line length with lines.Buffer: r.maxLine bytes,
	// plus room for "\r\n". A longer line ends the client with the
	// farewell "* line too long (max N bytes), closing".
	for lines.Scan() {
		// TODO: strip the "\r" that telnet sends before "\n", and skip
		// empty lines.
		r.messages <- message{from: c, text: lines.Text()}
	}
	// TODO: if ctx is done, the server is shutting down: return the
	// farewell "* server shutting down".
	return ""
}
