package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// On Linux the best readiness API is epoll, as in Python's
// selectors.DefaultSelector; poll is there to compare.
func defaultPoller() string { return "epoll" }
func pollerNames() []string { return []string{"epoll", "poll"} }
func newKqueue() (poller, error) {
	return nil, errors.New("kqueue exists on macOS and the BSDs, not on Linux")
}

// epoller uses epoll(7). The kernel keeps the interest list, so a wait
// costs what the ready sockets cost, not what all sockets cost.
//
// It never sleeps in epoll_wait itself. An epoll descriptor is readable
// whenever one of the sockets it watches is ready, so it can be watched
// like a socket: by Go's own poller, the one that waits for every
// net.Conn of lesson 06. wait asks epoll_wait without waiting; when
// nothing is ready, it parks the goroutine until the runtime says the
// epoll descriptor is readable. A goroutine parked this way holds no
// thread and no processor, so Go's scheduler has nothing to take back
// from it, as it has from a goroutine blocked in a system call.
type epoller struct {
	fd       int
	file     *os.File        // fd, known to Go's runtime poller
	raw      syscall.RawConn // waits on fd through that poller
	deadline time.Time       // the read deadline set on file (zero: none)
	buf      []unix.EpollEvent
	ready    []event
	n        int // events in buf
	err      error
	// ask is p.poll, made once: a method value made at each wait
	// would be a new allocation every time.
	ask func(uintptr) bool
}

func newEpoll() (poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// os.NewFile hands a non-blocking descriptor to the runtime poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	p := &epoller{fd: fd, file: os.NewFile(uintptr(fd), "epoll"), buf: make([]unix.EpollEvent, 256)}
	p.ask = p.poll
	if p.raw, err = p.file.SyscallConn(); err != nil {
		p.file.Close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return p, nil
}

func epollBits(want events) uint32 {
	var bits uint32
	if want&canRead != 0 {
		bits |= unix.EPOLLIN
	}
	if want&canWrite != 0 {
		bits |= unix.EPOLLOUT
	}
	return bits
}

func (p *epoller) ctl(op, fd int, want events) error {
	ev := unix.EpollEvent{Events: epollBits(want), Fd: int32(fd)}
	if err := unix.EpollCtl(p.fd, op, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

func (p *epoller) add(fd int, want events) error    { return p.ctl(unix.EPOLL_CTL_ADD, fd, want) }
func (p *epoller) modify(fd int, want events) error { return p.ctl(unix.EPOLL_CTL_MOD, fd, want) }
func (p *epoller) remove(fd int) error              { return p.ctl(unix.EPOLL_CTL_DEL, fd, 0) }
func (p *epoller) close() error                     { return p.file.Close() }
func (p *epoller) String() string                   { return "epoll" }

// forget does nothing: the close that follows removes fd from the epoll
// set, one EPOLL_CTL_DEL fewer for every client. The kernel removes a
// descriptor once every copy of it is closed, and the loop's sockets have
// no copies. (A socket duplicated with dup, or inherited by a child
// process, would stay in the set after close, still reporting events:
// that one must be removed first. See epoll(7), questions 6 and 7.)
func (p *epoller) forget(int) {}

// poll asks epoll_wait what is ready, without waiting, and says whether
// there is an answer: events, or an error other than EINTR.
func (p *epoller) poll(uintptr) bool {
	p.n, p.err = unix.EpollWait(p.fd, p.buf, 0)
	if p.err == unix.EINTR {
		p.n, p.err = 0, nil // a signal, e.g. Go's preemption
	}
	return p.n > 0 || p.err != nil
}

func (p *epoller) wait(timeout time.Duration) ([]event, error) {
	if timeout == 0 {
		p.poll(0)
	} else {
		// raw.Read calls poll first: under load, when something is
		// ready already, that is the whole wait, one system call. If
		// nothing is, it parks the goroutine until the runtime poller
		// says fd is readable, then calls poll again; or it returns at
		// the deadline.
		p.setDeadline(timeout)
		err := p.raw.Read(p.ask)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("epoll: %w", err)
		}
	}
	if p.err != nil {
		return nil, fmt.Errorf("epoll_wait: %w", p.err)
	}
	p.ready = p.ready[:0]
	for _, e := range p.buf[:p.n] {
		var ev events
		if e.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			ev |= canRead
		}
		if e.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			ev |= canWrite
		}
		p.ready = append(p.ready, event{fd: int(e.Fd), ready: ev})
	}
	return p.ready, nil
}

// setDeadline makes sure the wait ends by the timeout. Setting a deadline
// costs a timer update, so a deadline still to come and no later than
// needed is left alone: waking early only costs the loop one more turn.
func (p *epoller) setDeadline(timeout time.Duration) {
	now := time.Now()
	var want time.Time
	if timeout > 0 {
		want = now.Add(timeout)
	}
	set := p.deadline
	switch {
	case set.IsZero() && want.IsZero():
		return // no deadline, none needed
	case !set.IsZero() && now.Before(set) && (want.IsZero() || !want.Before(set)):
		return // set, still to come, and not later than needed
	}
	p.file.SetReadDeadline(want)
	p.deadline = want
}
