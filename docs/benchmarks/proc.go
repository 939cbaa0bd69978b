package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one running server: its process id and the address it
// printed on its first line.
type process struct {
	cmd    *exec.Cmd
	addr   string
	stderr *tailBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // what Wait returned, valid after done
}

// startProcess runs argv (pinned to a core by the caller's prefix) and
// waits for its first line, which must be "listening on ADDR". The rest of
// its standard output (the servers log every client) is read and thrown
// away, so a chatty server never blocks on a full pipe.
func startProcess(ctx context.Context, argv []string) (*process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, stderr: &tailBuffer{max: 2048}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", strings.Join(argv, " "), err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	first := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		first <- strings.TrimSpace(line)
		io.Copy(io.Discard, r)
	}()
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case line := <-first:
		addr, ok := strings.CutPrefix(line, "listening on ")
		if !ok {
			p.stop()
			return nil, fmt.Errorf("%s: first line %q is not \"listening on ADDR\" (stderr: %s)", argv[0], line, p.stderr)
		}
		p.addr = addr
		return p, nil
	case <-timer.C:
		p.stop()
		return nil, fmt.Errorf("%s printed no address within 15s (stderr: %s)", argv[0], p.stderr)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// stop asks the server to stop as Ctrl+C would (SIGTERM), and kills it if
// it has not exited after a few seconds.
func (p *process) stop() {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the server died before it was stopped.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// cpuTime is the CPU time (user + system, all threads, including threads
// that have ended) the process has used so far, from /proc/PID/stat. The
// kernel counts it in clock ticks of 1/100 s on Linux.
func cpuTime(pid int) (time.Duration, error) {
	user, system, err := cpuTimes(pid)
	return user + system, err
}

// cpuTimes is cpuTime in its two parts: the time the process's threads
// spent running its own code (user space) and in the kernel on its
// behalf (system calls, and the TCP work they start).
func cpuTimes(pid int) (user, system time.Duration, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name, in parentheses, may contain spaces: the fields
	// are counted from the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed /proc/PID/stat")
	}
	return parseCPUTicks(string(data[i+1:]))
}

// parseCPUTicks reads utime and stime (fields 14 and 15 of /proc/PID/stat)
// from the text after the command name, where they are the 12th and 13th.
func parseCPUTicks(afterName string) (user, system time.Duration, err error) {
	fields := strings.Fields(afterName)
	if len(fields) < 13 {
		return 0, 0, errors.New("malformed /proc/PID/stat")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("malformed /proc/PID/stat")
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime) * tick, time.Duration(stime) * tick, nil
}

// contextSwitches is how many times the kernel has taken the CPU from
// the process's threads so far, voluntarily (a thread went to sleep) or
// not (another thread took its turn), summed over the threads in
// /proc/PID/task. A thread that has ended takes its count with it; Go's
// runtime keeps its threads, and the C server has only one.
func contextSwitches(pid int) (int64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total int64
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread ended since the directory was read
		}
		if err != nil {
			return 0, err
		}
		n, err := parseSwitches(string(data))
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// parseSwitches adds the voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches lines of a /proc/PID/status text.
func parseSwitches(status string) (int64, error) {
	var total int64
	found := 0
	for _, line := range strings.Split(status, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "voluntary_ctxt_switches" && name != "nonvoluntary_ctxt_switches") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed %s line %q", name, line)
		}
		total += n
		found++
	}
	if found != 2 {
		return 0, errors.New("no context switch counts in /proc/PID/status")
	}
	return total, nil
}

// memory reads one of the kilobyte counters of /proc/PID/status: VmRSS
// (resident memory now) or VmHWM (its peak, the "high-water mark").
func memory(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(string(data), field)
}

// parseStatusKB finds "field:   1234 kB" in a /proc/PID/status text and
// returns the value in bytes.
func parseStatusKB(status, field string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed %s line %q", field, line)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no %s in /proc/PID/status", field)
}

// tailBuffer keeps the last max bytes written to it: enough of a
// process's stderr to explain a failure.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if s == "" {
		return "nothing"
	}
	return strings.ReplaceAll(s, "\n", " | ")
}

// usage is what a server has spent so far: CPU time (and the part of it
// in user space) and context switches.
type usage struct {
	cpu      time.Duration
	user     time.Duration
	switches int64
}

// serverUsage reads a process's usage from /proc.
func serverUsage(pid int) (usage, error) {
	user, system, err := cpuTimes(pid)
	switches, serr := contextSwitches(pid)
	return usage{cpu: user + system, user: user, switches: switches}, errors.Join(err, serr)
}
