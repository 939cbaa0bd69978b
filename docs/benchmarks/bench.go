package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// server is one architecture under test.
type server struct {
	name     string   // the row's label, e.g. "07 epoll"
	kind     string   // "go", "python" or "external"
	argv     []string // its whole command line, listening on port 0
	protocol string   // "ok": 05-07's greeting and OK...+chunk; "upper": 08's lines
	// sequential servers serve one connection at a time: the others wait
	// in the kernel's backlog, so they hold no idle connections.
	sequential bool
	maxMessage int // the largest message its protocol takes (0: no limit)
}

// cell is one measurement: a server under one load.
type cell struct {
	server    string
	conns     int
	size      int
	messages  int     // round trips per connection
	requests  int     // round trips completed
	rps       float64 // requests per second
	p50, p99  time.Duration
	cpuPerReq time.Duration // server CPU time per request
	// userPerReq is the part of cpuPerReq in user space: the server's
	// own code and its language's runtime; the rest is the kernel's.
	userPerReq time.Duration
	// switchesPerReq is how often, per request, the kernel took the
	// server's threads off the CPU.
	switchesPerReq float64
	peakRSS        int64  // bytes
	note           string // why there are no figures (skipped or failed)
	// steady is the length of the timed phase of a steady cell, whose
	// figures leave out connecting, greeting and closing (runSteady); 0
	// for a cell counted in round trips (runCell).
	steady time.Duration
	// sys is the server's system calls per request in a steady cell,
	// counted with perf when it can (counted).
	sys     syscallCounts
	counted bool
	// With repeated runs: how many succeeded and failed, and the first
	// failure's note.
	runs, failed int
	failure      string
}

// idle is the memory held per idle connection.
type idle struct {
	server   string
	conns    int
	rss0     int64   // resident memory with no client
	rssN     int64   // with conns idle clients
	idleCPU  float64 // share of one core used while they sit idle
	perConn  float64 // bytes per idle connection
	note     string
	duration time.Duration
}

// plan is what a run measures.
type plan struct {
	conns     []int
	sizes     []int
	requests  int // round trips per cell (fewer for 16 KiB and one client)
	idleConns int
	timeout   time.Duration // per cell
	// reps is how many times each target cell is run, and gridReps each
	// 64 B cell of the grid, whose single runs are short and noisy; the
	// page shows the median of each measure.
	reps, gridReps int
	// steady is the timed phase of a target cell: the clients are
	// connected and greeted first, and only this phase is measured, so
	// the targets are about serving requests, not taking clients in.
	steady time.Duration
	// pythonSizes are the message sizes the Python servers are measured
	// at: all of them would double the run's time.
	pythonSizes []int
}

func fullPlan() plan {
	return plan{
		conns: []int{1, 10, 100, 1000, 10000}, sizes: []int{64, 1024, 16384},
		requests: 20000, idleConns: 10000, timeout: 2 * time.Minute, reps: 3, gridReps: 5, steady: 3 * time.Second,
		pythonSizes: []int{64},
	}
}

func quickPlan() plan {
	return plan{
		conns: []int{1, 100}, sizes: []int{64},
		requests: 1000, idleConns: 200, timeout: 20 * time.Second, reps: 1, gridReps: 1, steady: 500 * time.Millisecond,
		pythonSizes: []int{64},
	}
}

// turn is one run of a repeated measurement: which repetition, of which
// server.
type turn struct{ rep, server int }

// takeTurns orders reps runs of each of n servers so that they take
// turns: every server once, then every server again, and so on.
func takeTurns(n, reps int) []turn {
	var order []turn
	for r := 0; r < reps; r++ {
		for s := 0; s < n; s++ {
			order = append(order, turn{rep: r, server: s})
		}
	}
	return order
}

// repsFor is how many times a grid cell of this message size is run:
// the 64 B cells, which the Python pairs of the targets compare, plan.gridReps
// times; the others once.
func (p plan) repsFor(size int) int {
	if size == 64 {
		return p.gridReps
	}
	return 1
}

// messagesFor spreads a cell's requests over its connections, at least
// two round trips each. Bigger messages get fewer requests, so every cell
// takes a few seconds at most.
func (p plan) messagesFor(conns, size int) int {
	total := p.requests
	if size > 4096 {
		total /= 4
	}
	if conns == 1 {
		// One client waits for every reply: the slowest cell per request.
		total /= 3
	}
	return max(2, (total+conns-1)/conns)
}

// env is what every measurement needs: where the binaries are and how to
// pin processes to cores.
type env struct {
	loadgen   string   // 07-select, whose -client -conns mode is the load
	self      string   // this program, whose -load-upper is 08's load
	serverPin []string // e.g. taskset -c 0
	clientPin []string // e.g. taskset -c 1
	pinned    bool
	pinNote   string
	progress  io.Writer
	// perf says whether the steady cells count system calls (perf stat);
	// perfNote says why not, when they do not. tmp holds perf's files.
	perf     bool
	perfNote string
	tmp      string
}

func bench(ctx context.Context, root string, o options, stdout io.Writer) error {
	started := time.Now()
	p := fullPlan()
	if o.quick {
		p = quickPlan()
	}
	tmp, err := os.MkdirTemp("", "socketsteps-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Build each server once; every cell starts a fresh process.
	fmt.Fprintln(stdout, "building the servers")
	bins := map[string]string{}
	for _, lesson := range []string{"05-loop", "06-goroutines", "07-select", "08-socketserver"} {
		bin := filepath.Join(tmp, lesson)
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./"+lesson)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./%s: %v\n%s", lesson, err, out)
		}
		bins[lesson] = bin
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	e := env{loadgen: bins["07-select"], self: self, progress: stdout, tmp: tmp}
	e.perf, e.perfNote = perfUsable()
	if !e.perf {
		fmt.Fprintf(stdout, "not counting system calls: %s\n", e.perfNote)
	}
	if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
		e.serverPin, e.clientPin, e.pinned = []string{"taskset", "-c", "0"}, []string{"taskset", "-c", "1"}, true
		e.pinNote = "server pinned to core 0 and client to core 1 with `taskset`"
	} else {
		e.pinNote = "server and client not pinned (no `taskset`, or fewer than two cores)"
	}

	m := machine()
	m.load0 = loadAverage()
	res := results{machine: m, plan: p, pinNote: e.pinNote, quick: o.quick, perfNote: e.perfNote}
	servers := goServers(bins)
	if o.python {
		py, note := pythonServers(root)
		servers = append(servers, py...)
		if note != "" {
			fmt.Fprintln(stdout, note)
			res.pythonNote = note
		}
	} else {
		res.pythonNote = "the Python servers were left out (-python=false, the default of -quick)"
	}
	var external *server
	if o.compare != "" {
		abs, err := filepath.Abs(o.compare)
		if err != nil {
			return err
		}
		external = &server{name: "C epoll (reference)", kind: "external", argv: []string{abs, "0"}, protocol: "ok"}
		servers = append(servers, *external)
		res.reference = external.name
	}
	if o.only != "" {
		var keep []server
		for _, s := range servers {
			if strings.Contains(s.name, o.only) {
				keep = append(keep, s)
			}
		}
		servers = keep
	}

	// The grid. Where a cell is run more than once (64 B), the servers
	// take turns (every server once, then every server again), so that a
	// machine that gets busier or quieter during the run weighs on every
	// server alike, not on whichever came last; each measure is then the
	// median over the runs.
	for _, size := range p.sizes {
		var here []server
		for _, s := range servers {
			if s.kind != "python" || slices.Contains(p.pythonSizes, size) {
				here = append(here, s)
			}
		}
		reps := p.repsFor(size)
		byServer := make([][]cell, len(here)) // each server's cells, by connections
		for _, n := range p.conns {
			runs := make([][]cell, len(here))
			for _, turn := range takeTurns(len(here), reps) {
				if err := ctx.Err(); err != nil {
					return err
				}
				c := e.runCell(ctx, here[turn.server], n, size, p.messagesFor(n, size), p.timeout)
				runs[turn.server] = append(runs[turn.server], c)
				if reps > 1 {
					fmt.Fprintf(stdout, "[%s] run %d/%d: %s\n", elapsedSince(started), turn.rep+1, reps, c.summary())
				} else {
					fmt.Fprintf(stdout, "[%s] %s\n", elapsedSince(started), c.summary())
				}
			}
			for i := range here {
				byServer[i] = append(byServer[i], median(runs[i]))
			}
		}
		for _, cells := range byServer {
			res.cells = append(res.cells, cells...)
		}
	}

	// Memory per idle connection.
	for _, s := range servers {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := e.measureIdle(ctx, s, p.idleConns)
		res.idle = append(res.idle, r)
		fmt.Fprintf(stdout, "[%s] %s\n", elapsedSince(started), r.summary())
	}

	// The target cells: a timed steady phase on connections opened and
	// greeted before it, repeated, the servers taking turns, each
	// measure's median kept, because one run is noisy. The cells that
	// compare with the external reference server need -compare; 06
	// against 07 at 16 KiB needs no reference.
	for _, g := range targetGroups(external != nil) {
		var targets []server
		for _, s := range servers {
			if g.takes(s) {
				targets = append(targets, s)
			}
		}
		reps := make([][]cell, len(targets))
		for _, turn := range takeTurns(len(targets), p.reps) {
			if err := ctx.Err(); err != nil {
				return err
			}
			c := e.runSteady(ctx, targets[turn.server], g.conns, g.size, p.steady, p.timeout)
			fmt.Fprintf(stdout, "[%s] target run %d/%d: %s\n", elapsedSince(started), turn.rep+1, p.reps, c.summary())
			reps[turn.server] = append(reps[turn.server], c)
		}
		for j := range targets {
			res.targetCells = append(res.targetCells, median(reps[j]))
		}
	}

	m.load1 = loadAverage()
	res.machine = m
	res.took = time.Since(started)
	return res.write(o, stdout)
}

// targetGroup is one load of the target cells and the servers put
// under it.
type targetGroup struct {
	size, conns int
	names       []string // the lessons' servers
	reference   bool     // and the external reference server
}

func (g targetGroup) takes(s server) bool {
	return slices.Contains(g.names, s.name) || (g.reference && s.kind == "external")
}

// targetGroups are the loads of the target cells: 64 B at 50 and 1,000
// connections against the reference (only with one), and 06 against 07
// epoll at 16 KiB and 50 connections.
func targetGroups(withReference bool) []targetGroup {
	var groups []targetGroup
	if withReference {
		for _, n := range []int{50, 1000} {
			groups = append(groups, targetGroup{size: 64, conns: n, names: []string{"06 goroutines", "07 poll", "07 epoll"}, reference: true})
		}
	}
	return append(groups, targetGroup{size: 16384, conns: 50, names: []string{"06 goroutines", "07 epoll"}})
}

// goServers are the lessons' servers, each with room for 10,000 clients
// and an idle timeout longer than any cell. Each server is given only the
// flags it has: an unknown flag would stop it with a usage error.
func goServers(bins map[string]string) []server {
	common := []string{"-addr", "127.0.0.1:0", "-idle-timeout", "10m", "-grace", "1s"}
	with := func(bin string, extra ...string) []string {
		return append(append([]string{bin}, common...), extra...)
	}
	// The sequential 05 ends a client's turn after -max-turn; a cell's
	// connections must not be cut off in the middle of it.
	loop := []string{"-max-turn", "0"}
	// The concurrent servers: room for every cell's clients, all of
	// which come from one address, 127.0.0.1.
	many := []string{"-max-conns", "20000"}
	perIP := []string{"-max-conns-per-ip", "0"}
	return []server{
		{name: "05 loop", kind: "go", argv: with(bins["05-loop"], loop...), protocol: "ok", sequential: true},
		{name: "06 goroutines", kind: "go", argv: with(bins["06-goroutines"], slices.Concat(many, perIP)...), protocol: "ok"},
		{name: "07 poll", kind: "go", argv: with(bins["07-select"], slices.Concat(many, perIP, []string{"-poller", "poll"})...), protocol: "ok"},
		{name: "07 epoll", kind: "go", argv: with(bins["07-select"], slices.Concat(many, perIP, []string{"-poller", "epoll"})...), protocol: "ok"},
		{name: "08 sequential", kind: "go", argv: with(bins["08-socketserver"], slices.Concat(many, perIP, []string{"-sequential"})...), protocol: "upper", sequential: true, maxMessage: 4096},
		{name: "08 concurrent", kind: "go", argv: with(bins["08-socketserver"], slices.Concat(many, perIP)...), protocol: "upper", maxMessage: 4096},
	}
}

// pythonServers are the articles' designs, rewritten in Python 3. They
// are skipped, with the reason, when python3 is not installed.
func pythonServers(root string) ([]server, string) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return nil, "python3 not found: skipping the Python servers"
	}
	// Version managers (pyenv) put a shell script first in PATH; start
	// the interpreter itself, so each cell does not pay for the script.
	if out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		py = strings.TrimSpace(string(out))
	}
	dir := filepath.Join(root, "docs", "benchmarks", "python")
	mk := func(name, file string) server {
		return server{name: name, kind: "python", argv: []string{py, filepath.Join(dir, file), "0"}, protocol: "ok"}
	}
	return []server{
		mk("py threads", "threads.py"),
		mk("py selectors", "selectors_loop.py"),
		mk("py busy loop", "busy_loop.py"),
	}, ""
}

// runCell starts s fresh, runs the load against it and reads what the
// server spent.
func (e env) runCell(ctx context.Context, s server, conns, size, messages int, timeout time.Duration) cell {
	c := cell{server: s.name, conns: conns, size: size, messages: messages}
	if s.maxMessage > 0 && size > s.maxMessage {
		c.note = fmt.Sprintf("skipped: its protocol takes lines of at most %d bytes", s.maxMessage)
		return c
	}
	if backlog := listenBacklog(); s.sequential && conns > backlog {
		c.note = fmt.Sprintf("skipped: %d clients at once overflow the listen backlog (%d here) of a server that takes one at a time; the kernel drops the extra handshakes and the clients retry with back-off of up to a minute, so TCP's retry timers, not the server, would set the figures", conns, backlog)
		return c
	}
	proc, err := startProcess(ctx, append(append([]string{}, e.serverPin...), s.argv...))
	if err != nil {
		c.note = "failed: " + err.Error()
		return c
	}
	defer proc.stop()
	pid := proc.cmd.Process.Pid
	u0, err := serverUsage(pid)
	if err != nil {
		c.note = "failed: " + err.Error()
		return c
	}

	argv := e.clientArgv(s, proc.addr, conns, size, "-messages", strconv.Itoa(messages))
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := exec.CommandContext(cctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	errOut := &tailBuffer{max: 1024}
	client.Stdout, client.Stderr = &out, errOut
	// The cells of taking clients in (10,000 connections) also count the
	// server's system calls, with perf, from before the first client
	// connects to after the last has gone.
	var counter *syscallCounter
	fds0 := -1
	if conns >= takingClientsIn {
		if counter = e.startCounting(s, pid); counter != nil {
			fds0 = openDescriptors(pid)
			counter.enable()
		}
	}
	err = client.Run()
	u1, uerr := serverUsage(pid)
	if counter != nil {
		// The client has closed its connections; the server takes a
		// moment to read each end of stream and close its side. Count
		// until it has, so the table shows a whole client's calls.
		waitForDescriptors(pid, fds0, 10*time.Second)
		e.keepCounts(&c, s, counter)
	}

	hwm, herr := memory(pid, "VmHWM")
	switch {
	case cctx.Err() == context.DeadlineExceeded:
		c.note = fmt.Sprintf("did not finish in %v", timeout)
		return c
	case err != nil:
		c.note = clientFailure(err, errOut, proc)
		return c
	case uerr != nil || herr != nil:
		c.note = fmt.Sprintf("failed: reading /proc: %v", errors.Join(uerr, herr))
		return c
	}
	sum, err := parseSummary(lastLine(out.String()))
	if err != nil {
		c.note = "failed: " + err.Error()
		return c
	}
	c.setFigures(sum, u0, u1)
	c.peakRSS = hwm
	return c
}

// takingClientsIn is the connections of the grid's cells that are about
// taking clients in: with 2 round trips each, accepting, greeting and
// closing are most of the work.
const takingClientsIn = 10000

// runSteady is runCell with a timed steady phase: the client opens and
// greets every connection, prints "steady conns=N", makes round trips on
// all of them for duration, and prints its summary before it closes them.
// The server's CPU time and context switches are read when the steady
// line arrives and again as soon as the summary does, so the figures are
// those of serving requests: accepting, greeting and closing the clients
// are left out.
func (e env) runSteady(ctx context.Context, s server, conns, size int, duration, timeout time.Duration) cell {
	c := cell{server: s.name, conns: conns, size: size, steady: duration}
	if s.maxMessage > 0 && size > s.maxMessage {
		c.note = fmt.Sprintf("skipped: its protocol takes lines of at most %d bytes", s.maxMessage)
		return c
	}
	proc, err := startProcess(ctx, append(append([]string{}, e.serverPin...), s.argv...))
	if err != nil {
		c.note = "failed: " + err.Error()
		return c
	}
	defer proc.stop()
	pid := proc.cmd.Process.Pid

	argv := e.clientArgv(s, proc.addr, conns, size, "-duration", duration.String())
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := exec.CommandContext(cctx, argv[0], argv[1:]...)
	errOut := &tailBuffer{max: 1024}
	client.Stderr = errOut
	out, err := client.StdoutPipe()
	if err != nil {
		c.note = "failed: " + err.Error()
		return c
	}
	if err := client.Start(); err != nil {
		c.note = fmt.Sprintf("failed: start the client: %v", err)
		return c
	}
	// With perf, the server's system calls are counted over the same
	// phase: perf is attached now, and counts from the first sample to
	// the second.
	counter := e.startCounting(s, pid)
	samples := 0
	phase, readErr := readSteady(out, func() (usage, error) {
		samples++
		u, err := serverUsage(pid)
		switch {
		case counter == nil:
		case samples == 1:
			counter.enable()
		case samples == 2:
			e.keepCounts(&c, s, counter)
			counter = nil
		}
		return u, err
	})
	if counter != nil {
		counter.stop() // the phase never ended: no count to keep
	}
	err = client.Wait()
	hwm, herr := memory(pid, "VmHWM")
	switch {
	case cctx.Err() == context.DeadlineExceeded:
		c.note = fmt.Sprintf("did not finish in %v", timeout)
		return c
	case err != nil:
		c.note = clientFailure(err, errOut, proc)
		return c
	case readErr != nil:
		c.note = "failed: " + readErr.Error()
		return c
	case herr != nil:
		c.note = fmt.Sprintf("failed: reading /proc: %v", herr)
		return c
	}
	c.setFigures(phase.sum, phase.before, phase.after)
	c.messages = c.requests / conns
	c.peakRSS = hwm
	return c
}

// clientArgv is the command line of the load client for s: lesson 07's
// load generator, or this program's -load-upper for lesson 08's protocol;
// load says how much load (-messages M or -duration D).
func (e env) clientArgv(s server, addr string, conns, size int, load ...string) []string {
	var argv []string
	switch s.protocol {
	case "ok":
		argv = []string{e.loadgen, "-client", "-addr", addr, "-idle-timeout", "1m"}
	case "upper":
		argv = []string{e.self, "-load-upper", "-addr", addr}
	}
	argv = append(argv, "-conns", strconv.Itoa(conns), "-size", strconv.Itoa(size))
	argv = append(argv, load...)
	return append(append([]string{}, e.clientPin...), argv...)
}

// clientFailure says why a client failed, and what the server said if it
// died too.
func clientFailure(err error, errOut *tailBuffer, proc *process) string {
	note := fmt.Sprintf("failed: client: %v: %s", err, errOut)
	if proc.exited() {
		note += fmt.Sprintf("; server exited: %v: %s", proc.err, proc.stderr)
	}
	return note
}

// setFigures fills in the client's figures and what the server spent
// between u0 and u1, per request, as are the system calls if counted.
func (c *cell) setFigures(sum summary, u0, u1 usage) {
	c.requests, c.rps, c.p50, c.p99 = sum.requests, sum.rps, sum.p50, sum.p99
	if c.requests > 0 {
		c.cpuPerReq = (u1.cpu - u0.cpu) / time.Duration(c.requests)
		c.userPerReq = (u1.user - u0.user) / time.Duration(c.requests)
		c.switchesPerReq = float64(u1.switches-u0.switches) / float64(c.requests)
	}
	if c.counted {
		c.sys = c.sys.perRequest(c.requests)
	}
}

// startCounting attaches perf to the server pid, counting nothing until
// enable; nil when this run does not count system calls, or perf would
// not start (said on the progress output).
func (e env) startCounting(s server, pid int) *syscallCounter {
	if !e.perf {
		return nil
	}
	counter, err := countSyscalls(e.tmp, pid)
	if err != nil {
		fmt.Fprintf(e.progress, "counting system calls of %s failed: %v\n", s.name, err)
		return nil
	}
	return counter
}

// keepCounts ends a count and keeps its figures in c, or says on the
// progress output why there are none.
func (e env) keepCounts(c *cell, s server, counter *syscallCounter) {
	counts, err := counter.stop()
	if err != nil {
		fmt.Fprintf(e.progress, "counting system calls of %s failed: %v\n", s.name, err)
		return
	}
	c.sys, c.counted = counts, true
}

// steadyPhase is what the driver saw of a client's timed phase: its
// summary, and what the server had spent when the phase began and when
// it ended.
type steadyPhase struct {
	sum           summary
	before, after usage
}

// readSteady reads a steady client's standard output line by line. It
// calls sample when the "steady conns=N" line arrives, and again as soon
// as the summary line does, while the client still holds its connections
// open; then it reads on to the end of the output.
func readSteady(r io.Reader, sample func() (usage, error)) (steadyPhase, error) {
	var (
		ph           steadyPhase
		began, ended bool
		errs         []error
		lines        = bufio.NewScanner(r)
		sampleInto   = func(u *usage) {
			var err error
			if *u, err = sample(); err != nil {
				errs = append(errs, fmt.Errorf("reading /proc: %w", err))
			}
		}
	)
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		switch {
		case ended || line == "":
		case strings.HasPrefix(line, "steady "):
			if began {
				errs = append(errs, fmt.Errorf("a second steady line %q", line))
				continue
			}
			began = true
			sampleInto(&ph.before)
		case began:
			sum, err := parseSummary(line)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			sampleInto(&ph.after)
			ph.sum, ended = sum, true
		}
	}
	io.Copy(io.Discard, r) // the rest, if a line was too long for the scanner
	switch {
	case !began:
		errs = append(errs, errors.New(`the client printed no "steady conns=N" line`))
	case !ended:
		errs = append(errs, errors.New("the client printed no summary after its steady line"))
	}
	return ph, errors.Join(errs...)
}

// listenBacklog is the kernel's cap on a listener's queue of connections
// not yet accepted (Go asks for this cap). It is 4096 on recent Linux.
func listenBacklog() int {
	data, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return 4096
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 4096
	}
	return n
}

// measureIdle compares the server's resident memory with no client and
// with n connected clients that have each made one round trip and then
// sit idle, and how much CPU the server uses meanwhile.
func (e env) measureIdle(ctx context.Context, s server, n int) idle {
	r := idle{server: s.name, conns: n}
	if s.sequential {
		r.note = "n/a: serves one client at a time; the others wait in the kernel's backlog, not in the server"
		return r
	}
	start := time.Now()
	proc, err := startProcess(ctx, append(append([]string{}, e.serverPin...), s.argv...))
	if err != nil {
		r.note = "failed: " + err.Error()
		return r
	}
	defer proc.stop()
	pid := proc.cmd.Process.Pid
	if r.rss0, err = memory(pid, "VmRSS"); err != nil {
		r.note = "failed: " + err.Error()
		return r
	}

	// A server that takes clients slowly (the busy loop accepts one per
	// pass over all the others) gets a minute, not forever.
	const limit = time.Minute
	octx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	conns, err := openIdle(octx, proc.addr, s.protocol, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	switch {
	case octx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		r.note = fmt.Sprintf("gave up: %d of %d clients taken in after %v", len(conns), n, limit)
		return r
	case err != nil:
		r.note = fmt.Sprintf("failed after %d connections: %v", len(conns), err)
		return r
	}
	rssN, err1 := memory(pid, "VmRSS")
	// Idle CPU: what the server burns in one second in which none of its
	// clients says anything. The second starts a moment after the last
	// round trip: the server may still be logging its last clients, and
	// a poll loop's last pass over 10,000 descriptors takes milliseconds.
	// The kernel counts CPU time in ticks of 10 ms, so that tail alone
	// could show as 1% of a core in a second that was really idle.
	if !pause(ctx, idleSettle) {
		r.note = "interrupted"
		return r
	}
	cpu0, err2 := cpuTime(pid)
	if !pause(ctx, time.Second) {
		r.note = "interrupted"
		return r
	}
	cpu1, err3 := cpuTime(pid)
	if err := errors.Join(err1, err2, err3); err != nil {
		r.note = "failed: " + err.Error()
		return r
	}
	r.rssN = rssN
	r.perConn = float64(rssN-r.rss0) / float64(n)
	r.idleCPU = float64(cpu1-cpu0) / float64(time.Second)
	r.duration = time.Since(start)
	return r
}

// idleSettle is how long the idle measurement waits after the last round
// trip before its one second starts.
const idleSettle = 500 * time.Millisecond

// pause waits for d, or until ctx is done; it says whether d passed.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// openIdle opens n connections to addr, makes one round trip on each so
// the server has really taken it in, and returns them open. At most 200
// handshakes are in flight at once, so the backlog never overflows.
func openIdle(ctx context.Context, addr, protocol string, n int) ([]net.Conn, error) {
	var (
		mu    sync.Mutex
		conns []net.Conn
		first error
		wg    sync.WaitGroup
	)
	slots := make(chan struct{}, 200)
	for i := 0; i < n; i++ {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			c, err := roundTrip(ctx, addr, protocol)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return conns, first
}

// roundTrip connects and makes one request/reply exchange in the
// server's protocol.
func roundTrip(ctx context.Context, addr, protocol string) (net.Conn, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	r := bufio.NewReader(c)
	if protocol == "ok" {
		if _, err := r.ReadString('\n'); err != nil {
			c.Close()
			return nil, fmt.Errorf("greeting: %w", err)
		}
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		c.Close()
		return nil, err
	}
	// "OK...ping\n" or "PING\n": either way the reply ends the line.
	if _, err := r.ReadString('\n'); err != nil {
		c.Close()
		return nil, fmt.Errorf("reply: %w", err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// summary is the load generator's last line, for example
// "conns=10 messages=100 requests=1000 seconds=0.052 rps=19230 p50=48us p99=95us".
type summary struct {
	requests int
	rps      float64
	p50, p99 time.Duration
}

func parseSummary(line string) (summary, error) {
	var s summary
	fields := map[string]string{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if ok {
			fields[k] = v
		}
	}
	var errs []error
	num := func(key, unit string) float64 {
		v, ok := fields[key]
		if !ok {
			errs = append(errs, fmt.Errorf("no %s=", key))
			return 0
		}
		x, err := strconv.ParseFloat(strings.TrimSuffix(v, unit), 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not a number", key, v))
		}
		return x
	}
	s.requests = int(num("requests", ""))
	s.rps = num("rps", "")
	s.p50 = time.Duration(num("p50", "us")) * time.Microsecond
	s.p99 = time.Duration(num("p99", "us")) * time.Microsecond
	if len(errs) > 0 {
		return summary{}, fmt.Errorf("load generator summary %q: %w", line, errors.Join(errs...))
	}
	return s, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// median summarises repeated runs of one cell: each measure (requests/s,
// p50, p99, CPU per request, peak memory) is the median of that measure
// over the runs that succeeded, taken on its own, so one run's odd p99
// does not ride along with another measure's median run. Failed runs are
// left out and counted, and the first failure's note kept; if every run
// failed, the first failure is the result.
func median(cells []cell) cell {
	var ok []cell
	failure := ""
	for _, c := range cells {
		if c.note == "" {
			ok = append(ok, c)
		} else if failure == "" {
			failure = c.note
		}
	}
	if len(ok) == 0 {
		if len(cells) == 0 {
			return cell{note: "failed: no runs"}
		}
		return cells[0]
	}
	m := ok[0]
	m.runs, m.failed, m.failure = len(ok), len(cells)-len(ok), failure
	m.requests = int(medianOf(ok, func(c cell) float64 { return float64(c.requests) }))
	m.rps = medianOf(ok, func(c cell) float64 { return c.rps })
	m.p50 = time.Duration(medianOf(ok, func(c cell) float64 { return float64(c.p50) }))
	m.p99 = time.Duration(medianOf(ok, func(c cell) float64 { return float64(c.p99) }))
	m.cpuPerReq = time.Duration(medianOf(ok, func(c cell) float64 { return float64(c.cpuPerReq) }))
	m.userPerReq = time.Duration(medianOf(ok, func(c cell) float64 { return float64(c.userPerReq) }))
	m.switchesPerReq = medianOf(ok, func(c cell) float64 { return c.switchesPerReq })
	m.peakRSS = int64(medianOf(ok, func(c cell) float64 { return float64(c.peakRSS) }))
	var counted []cell
	for _, c := range ok {
		if c.counted {
			counted = append(counted, c)
		}
	}
	if m.counted = len(counted) > 0; m.counted {
		m.sys = syscallCounts{all: medianOf(counted, func(c cell) float64 { return c.sys.all }), byKind: map[string]float64{}}
		for _, k := range syscallKinds {
			m.sys.byKind[k] = medianOf(counted, func(c cell) float64 { return c.sys.byKind[k] })
		}
	}
	return m
}

// medianOf is the median of one measure over cells: the middle value,
// or the mean of the two middle values of an even count.
func medianOf(cells []cell, measure func(cell) float64) float64 {
	xs := make([]float64, len(cells))
	for i, c := range cells {
		xs[i] = measure(c)
	}
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func (c cell) summary() string {
	load := fmt.Sprintf("conns=%-5d size=%-5d", c.conns, c.size)
	if c.steady > 0 {
		load += fmt.Sprintf(" steady=%v", c.steady)
	}
	if c.note != "" {
		return fmt.Sprintf("%-20s %s %s", c.server, load, c.note)
	}
	return fmt.Sprintf("%-20s %s rps=%.0f p50=%v p99=%v cpu/req=%v switches/req=%.2f peakRSS=%s",
		c.server, load, c.rps, c.p50, c.p99, c.cpuPerReq, c.switchesPerReq, bytesString(c.peakRSS))
}

func (r idle) summary() string {
	if r.note != "" {
		return fmt.Sprintf("%-20s idle x%d: %s", r.server, r.conns, r.note)
	}
	return fmt.Sprintf("%-20s idle x%d: %.0f B/conn (rss %s -> %s), idle CPU %.0f%%",
		r.server, r.conns, r.perConn, bytesString(r.rss0), bytesString(r.rssN), 100*r.idleCPU)
}

// openDescriptors is how many files pid has open (-1 if /proc cannot say).
func openDescriptors(pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(entries)
}

// waitForDescriptors waits until pid has at most n files open again, or
// the limit passes. Nothing tells the driver when a server has closed its
// side of every connection, so it looks in /proc every 10 ms.
func waitForDescriptors(pid, n int, limit time.Duration) {
	if n < 0 {
		return
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if m := openDescriptors(pid); m >= 0 && m <= n {
			return
		}
		time.Sleep(10 * time.Millisecond) // polling /proc: there is no event to wait for
	}
}
