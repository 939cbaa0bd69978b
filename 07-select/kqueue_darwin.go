package main

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// On macOS the best readiness API is kqueue, as in Python's
// selectors.DefaultSelector; poll is there to compare. This file is
// compiled and vetted for darwin but has not been run by the lesson's
// authors: see the README.
func defaultPoller() string     { return "kqueue" }
func pollerNames() []string     { return []string{"kqueue", "poll"} }
func newEpoll() (poller, error) { return nil, errors.New("epoll exists on Linux only") }

// kqueuePoller uses kqueue(2). Reading and writing are separate filters,
// so it remembers what each descriptor wants and changes only the
// difference.
type kqueuePoller struct {
	fd    int
	want  map[int]events
	buf   []unix.Kevent_t
	ready []event
}

func newKqueue() (poller, error) {
	fd, err := unix.Kqueue()
	if err != nil {
		return nil, fmt.Errorf("kqueue: %w", err)
	}
	return &kqueuePoller{fd: fd, want: map[int]events{}, buf: make([]unix.Kevent_t, 256)}, nil
}

func (p *kqueuePoller) change(fd int, old, want events) error {
	var changes []unix.Kevent_t
	for _, f := range []struct {
		ev     events
		filter int
	}{{canRead, unix.EVFILT_READ}, {canWrite, unix.EVFILT_WRITE}} {
		var k unix.Kevent_t
		switch {
		case want&f.ev != 0 && old&f.ev == 0:
			unix.SetKevent(&k, fd, f.filter, unix.EV_ADD|unix.EV_ENABLE)
		case want&f.ev == 0 && old&f.ev != 0:
			unix.SetKevent(&k, fd, f.filter, unix.EV_DELETE)
		default:
			continue
		}
		changes = append(changes, k)
	}
	if len(changes) > 0 {
		if _, err := unix.Kevent(p.fd, changes, nil, nil); err != nil {
			return fmt.Errorf("kevent: %w", err)
		}
	}
	p.want[fd] = want
	return nil
}

func (p *kqueuePoller) add(fd int, want events) error    { return p.change(fd, 0, want) }
func (p *kqueuePoller) modify(fd int, want events) error { return p.change(fd, p.want[fd], want) }
func (p *kqueuePoller) close() error                     { return unix.Close(p.fd) }
func (p *kqueuePoller) String() string                   { return "kqueue" }

// forget only drops the record: closing a descriptor removes every
// kevent that refers to it (kqueue(2)).
func (p *kqueuePoller) forget(fd int) { delete(p.want, fd) }

func (p *kqueuePoller) remove(fd int) error {
	err := p.change(fd, p.want[fd], 0)
	delete(p.want, fd)
	return err
}

func (p *kqueuePoller) wait(timeout time.Duration) ([]event, error) {
	var ts *unix.Timespec
	if timeout >= 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	n, err := unix.Kevent(p.fd, nil, p.buf, ts)
	if err == unix.EINTR {
		return nil, nil // a signal, e.g. Go's preemption: ask again
	}
	if err != nil {
		return nil, fmt.Errorf("kevent: %w", err)
	}
	p.ready = p.ready[:0]
	for _, k := range p.buf[:n] {
		var ev events
		switch {
		case k.Flags&unix.EV_ERROR != 0:
			ev = canRead | canWrite
		case k.Filter == unix.EVFILT_READ:
			ev = canRead
		case k.Filter == unix.EVFILT_WRITE:
			ev = canWrite
		}
		p.ready = append(p.ready, event{fd: int(k.Ident), ready: ev})
	}
	return p.ready, nil
}
