package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// syscallKinds are the system calls counted in the steady cells, with
// perf(1) when it is installed and allowed to trace. Every request costs
// a read and a write; the waits (epoll_wait and poll in the servers' own
// loops, epoll_pwait in Go's runtime poller) are shared among the sockets
// a wait finds ready; futex and nanosleep are threads waking and putting
// each other to sleep, which a single-threaded server never does; the
// rest are what taking a client in and letting it go costs. Counts
// do not depend on how busy the machine is, so they show where time goes
// more steadily than the times do.
var syscallKinds = []string{"read", "write", "epoll_wait", "epoll_pwait", "poll", "ppoll", "futex", "nanosleep",
	"accept4", "epoll_ctl", "setsockopt", "getsockname", "shutdown", "close"}

// syscallCounts is what one counted run found: system calls of every kind
// (all), and of each kind in syscallKinds.
type syscallCounts struct {
	all    float64
	byKind map[string]float64
}

// perRequest divides the counts by the requests made meanwhile.
func (s syscallCounts) perRequest(requests int) syscallCounts {
	out := syscallCounts{byKind: map[string]float64{}}
	if requests <= 0 {
		return out
	}
	out.all = s.all / float64(requests)
	for k, v := range s.byKind {
		out.byKind[k] = v / float64(requests)
	}
	return out
}

// waits is the calls that wait for readiness.
func (s syscallCounts) waits() float64 {
	return s.byKind["epoll_wait"] + s.byKind["epoll_pwait"] + s.byKind["poll"] + s.byKind["ppoll"]
}

// syscallCounter counts a running process's system calls with perf stat,
// attached from the start but counting only between enable and stop:
// perf is started with its events disabled (-D -1) and switched on and
// off through a control pipe (--control), each command acknowledged, so
// the count covers exactly the phase the driver measures.
type syscallCounter struct {
	cmd     *exec.Cmd
	file    string
	ctl     *os.File // commands to perf
	ack     *bufio.Reader
	ackPipe *os.File
	err     error // why the count failed, if it did
}

// perfUsable says whether perf can count system calls here: it must be
// installed, and the kernel must let it read the syscall tracepoints
// (root, or a low kernel.perf_event_paranoid). The reason comes back when
// it cannot.
func perfUsable() (bool, string) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return false, "perf is not installed"
	}
	out, err := exec.Command(perf, "stat", "-x,", "-e", "raw_syscalls:sys_enter", "true").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("raw_syscalls:sys_enter")) || bytes.Contains(out, []byte("<not")) {
		return false, "perf cannot read the syscall tracepoints here (it needs root, or kernel.perf_event_paranoid at -1)"
	}
	return true, ""
}

// countSyscalls attaches perf to pid, counting nothing until enable.
func countSyscalls(dir string, pid int) (*syscallCounter, error) {
	events := []string{"raw_syscalls:sys_enter"}
	for _, k := range syscallKinds {
		events = append(events, "syscalls:sys_enter_"+k)
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ackR, ackW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, err
	}
	file := filepath.Join(dir, fmt.Sprintf("perf-%d-%d.csv", pid, time.Now().UnixNano()))
	// perf reads commands on its fd 3 and acknowledges them on fd 4.
	cmd := exec.Command("perf", "stat", "-x,", "-e", strings.Join(events, ","), "-D", "-1",
		"--control", "fd:3,4", "-p", strconv.Itoa(pid), "-o", file)
	cmd.ExtraFiles = []*os.File{ctlR, ackW}
	err = cmd.Start()
	ctlR.Close()
	ackW.Close()
	if err != nil {
		ctlW.Close()
		ackR.Close()
		return nil, err
	}
	return &syscallCounter{cmd: cmd, file: file, ctl: ctlW, ack: bufio.NewReader(ackR), ackPipe: ackR}, nil
}

// command sends perf one control command and waits for its "ack".
func (c *syscallCounter) command(what string) error {
	c.ackPipe.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c.ctl, what); err != nil {
		return fmt.Errorf("perf %s: %w", what, err)
	}
	line, err := c.ack.ReadString('\n')
	// perf ends each acknowledgement with a NUL byte, read before the next.
	if err != nil || strings.Trim(line, "\x00 \n") != "ack" {
		return fmt.Errorf("perf %s: no acknowledgement (%q, %v)", what, line, err)
	}
	return nil
}

// enable starts counting. If perf does not take the command, the count
// has failed, and stop says so.
func (c *syscallCounter) enable() {
	if c.err == nil {
		c.err = c.command("enable")
	}
}

// stop stops counting, ends perf (it writes its figures on SIGINT) and
// reads them.
func (c *syscallCounter) stop() (syscallCounts, error) {
	defer os.Remove(c.file)
	derr := c.err
	if derr == nil {
		derr = c.command("disable")
	}
	c.ctl.Close()
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		c.cmd.Process.Kill()
	}
	// perf's exit status after SIGINT says nothing useful: the file
	// does, and parsePerfStat fails if it holds no count.
	c.cmd.Wait()
	c.ackPipe.Close()
	if derr != nil {
		return syscallCounts{}, derr
	}
	data, err := os.ReadFile(c.file)
	if err != nil {
		return syscallCounts{}, err
	}
	return parsePerfStat(string(data))
}

// parsePerfStat reads perf stat's CSV output (-x,): count,unit,event,...
// Lines starting with '#' and empty lines are comments.
func parsePerfStat(text string) (syscallCounts, error) {
	s := syscallCounts{byKind: map[string]float64{}}
	found := false
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ",")
		if len(fields) < 3 {
			continue
		}
		n, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue // "<not counted>" or "<not supported>"
		}
		switch event := fields[2]; {
		case event == "raw_syscalls:sys_enter":
			s.all, found = n, true
		case strings.HasPrefix(event, "syscalls:sys_enter_"):
			s.byKind[strings.TrimPrefix(event, "syscalls:sys_enter_")] = n
		}
	}
	if !found {
		return syscallCounts{}, fmt.Errorf("perf stat printed no raw_syscalls:sys_enter count: %q", text)
	}
	return s, nil
}
