//go:build solution

// The reference solution: compare it with your starter.go once your
// tests pass, or when you are stuck.
package main

import (
	"container/list"
	"time"
)

// sweeper keeps every client in the order of its idle deadline. Every
// client has the same idle timeout, so the deadlines come in the order
// of last activity: a list with the latest active client at the back is
// always sorted, and each change costs O(1). (With a different timeout
// per client, a heap, container/heap, would do it in O(log n).)
type sweeper struct {
	idle  time.Duration
	order *list.List // of *idleEntry, earliest deadline first
}

// idleEntry is one client in the list, with its deadline.
type idleEntry struct {
	c        *conn
	deadline time.Time
}

func newSweeper(idle time.Duration) *sweeper {
	return &sweeper{idle: idle, order: list.New()}
}

// add starts watching c, which was active at now.
func (s *sweeper) add(c *conn, now time.Time) {
	s.remove(c) // in case it is there already
	c.elem = s.order.PushBack(&idleEntry{c: c, deadline: now.Add(s.idle)})
}

// touch records activity of c at now: its deadline moves, and so it
// moves to the back.
func (s *sweeper) touch(c *conn, now time.Time) {
	if c.elem == nil {
		return
	}
	c.elem.Value.(*idleEntry).deadline = now.Add(s.idle)
	s.order.MoveToBack(c.elem)
}

// remove stops watching c; a client it no longer holds is ignored.
func (s *sweeper) remove(c *conn) {
	if c.elem == nil {
		return
	}
	s.order.Remove(c.elem)
	c.elem = nil
}

// next returns the earliest deadline, and false if there is no client.
func (s *sweeper) next() (time.Time, bool) {
	front := s.order.Front()
	if front == nil {
		return time.Time{}, false
	}
	return front.Value.(*idleEntry).deadline, true
}

// expired removes and returns the clients whose deadline is now or
// earlier, earliest first. It stops at the first client still in
// time: everybody behind it is later still.
func (s *sweeper) expired(now time.Time) []*conn {
	var due []*conn
	for e := s.order.Front(); e != nil; e = s.order.Front() {
		entry := e.Value.(*idleEntry)
		if entry.deadline.After(now) {
			break
		}
		s.remove(entry.c)
		due = append(due, entry.c)
	}
	return due
}
