//go:build !solution

// Your work: the sweeper. Run the tests with
//
//	go test -tags exercise ./07-select/exercise-idle-sweep/
//
// They fail until the sweeper hands the loop its idle clients in the
// order their deadlines come, and the loop closes them on time.
package main

import "time"

// conn.elem is there for you. This blank assignment only keeps linters
// from calling it unused until your code uses it; delete it then.
var _ = conn{}.elem

// sweeper keeps every client in the order of its idle deadline: the
// moment it will have been silent for idle. The loop calls add when a
// client connects, touch when it sends or takes a reply, remove when it
// is closed; before each poll it calls expired to close the silent
// ones, and next to know how long it may sleep.
//
// Every client has the same idle timeout, so the deadlines come in the
// order of last activity: a list, with the client that was just active
// moved to its end, is always sorted. No timer, no goroutine, and no
// scan of every client is needed.
type sweeper struct {
	idle time.Duration
	// TODO 1: a list of clients, earliest deadline first
	// (container/list), and each client's deadline. conn.elem is there
	// to keep the client's place in the list.
}

func newSweeper(idle time.Duration) *sweeper {
	return &sweeper{idle: idle}
}

// add starts watching c, which was active at now: its deadline is
// now+idle, the latest of all.
func (s *sweeper) add(c *conn, now time.Time) {
	// TODO 2: put c at the end of the list, remember its deadline.
}

// touch records activity of c at now: its deadline moves to now+idle,
// so it moves to the end.
func (s *sweeper) touch(c *conn, now time.Time) {
	// TODO 3: update its deadline and move it to the end, in O(1).
}

// remove stops watching c. Removing a client the sweeper no longer
// holds (expired handed it out already) does nothing.
func (s *sweeper) remove(c *conn) {
	// TODO 4
}

// next returns the earliest deadline, and false if there is no client.
func (s *sweeper) next() (time.Time, bool) {
	// TODO 5: the front of the list. As it stands the loop sleeps for
	// ever when nothing happens, and a silent client stays for ever.
	return time.Time{}, false
}

// expired removes and returns the clients whose deadline is now or
// earlier, earliest first. It looks at those and at one more client
// only, however many there are.
func (s *sweeper) expired(now time.Time) []*conn {
	// TODO 6: take clients from the front while their deadline has
	// come (!deadline.After(now)).
	return nil
}
