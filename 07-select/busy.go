//go:build linux || darwin

package main

import "time"

// busyPoller is the articles' first non-blocking server: it never asks
// the kernel anything. Every wait returns at once, claiming every socket
// is ready for what we want, so the loop tries them all, gets EAGAIN
// from almost all, and comes straight back: one CPU core at 100% to
// serve nobody.
type busyPoller struct {
	want  map[int]events
	ready []event
}

func (p *busyPoller) add(fd int, want events) error    { p.want[fd] = want; return nil }
func (p *busyPoller) modify(fd int, want events) error { p.want[fd] = want; return nil }
func (p *busyPoller) remove(fd int) error              { delete(p.want, fd); return nil }
func (p *busyPoller) forget(fd int)                    { delete(p.want, fd) }
func (p *busyPoller) close() error                     { return nil }
func (p *busyPoller) String() string                   { return "a busy loop (no waiting at all)" }

func (p *busyPoller) wait(time.Duration) ([]event, error) {
	p.ready = p.ready[:0]
	for fd, want := range p.want {
		if want != 0 {
			p.ready = append(p.ready, event{fd: fd, ready: want})
		}
	}
	return p.ready, nil
}
