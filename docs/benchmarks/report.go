package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// machineInfo names the machine the figures come from.
type machineInfo struct {
	cpus         int
	model        string
	kernel       string
	goVersion    string
	date         string
	load0, load1 string // load average at the start and at the end
	// syscall is what one system call that does no work costs: the
	// price of every crossing into the kernel, which each request pays
	// a few times. Zero where it was not measured.
	syscall time.Duration
}

func machine() machineInfo {
	m := machineInfo{cpus: runtime.NumCPU(), model: "unknown CPU", kernel: runtime.GOOS, date: time.Now().UTC().Format("2006-01-02")}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.kernel = strings.TrimSpace(string(out))
	}
	if runtime.GOOS == "linux" {
		m.syscall = syscallCost()
	}
	m.goVersion = runtime.Version()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.goVersion = strings.TrimSpace(string(out))
	}
	return m
}

// syscallCost times getppid, a system call that only reads a number:
// what is left is the cost of entering and leaving the kernel. On a
// bare-metal machine it is a fraction of a microsecond; under some
// virtual machines it is several times that.
func syscallCost() time.Duration {
	const n = 200_000
	start := time.Now()
	for i := 0; i < n; i++ {
		syscall.Getppid()
	}
	return time.Since(start) / n
}

// loadAverage is the first three fields of /proc/loadavg: how many
// processes wanted a CPU, on average, over 1, 5 and 15 minutes.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// results is everything one run measured.
type results struct {
	machine     machineInfo
	plan        plan
	pinNote     string
	quick       bool
	cells       []cell
	idle        []idle
	targetCells []cell
	reference   string // the external server's name, with -compare
	pythonNote  string // why the Python servers are missing, if they are
	perfNote    string // why system calls were not counted, if they were not
	took        time.Duration
}

const (
	beginMarker = "<!-- benchmarks:begin (written by go run ./docs/benchmarks; do not edit by hand) -->"
	endMarker   = "<!-- benchmarks:end -->"
)

// write saves the plots in o.out and the Markdown either in the marked
// block of o.page or, without a page, as o.out/results.md.
func (r results) write(o options, stdout io.Writer) error {
	plots, err := r.writePlots(o.out)
	if err != nil {
		return err
	}
	if o.page == "" {
		file := filepath.Join(o.out, "results.md")
		if err := os.WriteFile(file, []byte("# Benchmark results\n\n"+r.markdown(plots, "")), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "wrote", file)
		return nil
	}
	rel, err := filepath.Rel(filepath.Dir(o.page), o.out)
	if err != nil {
		return err
	}
	page, err := os.ReadFile(o.page)
	if err != nil {
		return err
	}
	before, rest, ok1 := strings.Cut(string(page), beginMarker)
	_, after, ok2 := strings.Cut(rest, endMarker)
	if !ok1 || !ok2 {
		return fmt.Errorf("%s has no %q ... %q block to rewrite", o.page, beginMarker, endMarker)
	}
	block := beginMarker + "\n\n" + r.markdown(plots, filepath.ToSlash(rel)+"/") + "\n" + endMarker
	if err := os.WriteFile(o.page, []byte(before+block+after), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "rewrote the results block of", o.page)
	return nil
}

// markdown renders the results; prefix leads from the Markdown file to
// the plots.
func (r results) markdown(plots []plotFile, prefix string) string {
	var b bytes.Buffer
	m := r.machine
	mode := "full run"
	if r.quick {
		mode = "quick run (-quick)"
	}
	syscallNote := ""
	if m.syscall > 0 {
		syscallNote = fmt.Sprintf("; one system call that does no work (getppid) took %s", durString(m.syscall))
	}
	fmt.Fprintf(&b, "Measured on %s: %d × %s, %s, %s%s; %s; load average (1, 5, 15 min) %s at the start and %s at the end (see the note on load above); %s; the run took %v.\n\n",
		m.date, m.cpus, m.model, m.kernel, m.goVersion, syscallNote, r.pinNote, m.load0, m.load1, mode, r.took.Round(time.Second))

	b.WriteString("### Targets\n\n")
	r.writeTargets(&b)

	b.WriteString("### Plots\n\n")
	for _, p := range plots {
		fmt.Fprintf(&b, "![%s](%s%s)\n\n", p.title, prefix, p.file)
	}

	fmt.Fprintf(&b, "### Memory per idle connection\n\n")
	b.WriteString("Resident memory (VmRSS) of the server with N clients that each made one round trip and then sit idle, minus its resident memory with none, divided by N; and the CPU the server used in one second of that idleness, which starts half a second after the last round trip (so that the last replies and log lines are not counted as idleness).\n\n")
	b.WriteString("| server | idle clients | RSS with none | RSS with them | per idle connection | idle CPU |\n|---|--:|--:|--:|--:|--:|\n")
	for _, i := range r.idle {
		if i.note != "" {
			fmt.Fprintf(&b, "| %s | %d | %s |  |  |  |\n", i.server, i.conns, i.note)
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %.0f%% of a core |\n", i.server, i.conns, bytesString(i.rss0), bytesString(i.rssN), bytesString(int64(i.perConn)), 100*i.idleCPU)
	}
	b.WriteString("\n")

	for _, size := range r.plan.sizes {
		fmt.Fprintf(&b, "### %s messages\n\n", sizeString(size))
		if reps := r.plan.repsFor(size); reps > 1 {
			fmt.Fprintf(&b, "Each cell was run %d times, the servers taking turns; every figure is the median of %d runs, each measure taken separately.\n\n", reps, reps)
		} else {
			b.WriteString("Each cell was run once.\n\n")
		}
		var ofSize []cell
		for _, c := range r.cells {
			if c.size == size {
				ofSize = append(ofSize, c)
			}
		}
		writeFailedRuns(&b, ofSize)
		b.WriteString("| server | connections | round trips each | requests/s | p50 | p99 | server CPU per request | context switches per request | server peak RSS |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, c := range r.cells {
			if c.size != size {
				continue
			}
			if c.note != "" {
				fmt.Fprintf(&b, "| %s | %d | %d | %s |  |  |  |  |  |\n", c.server, c.conns, c.messages, escapePipes(c.note))
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %s | %s | %s | %.2f | %s |\n", c.server, c.conns, c.messages, c.rps, durString(c.p50), durString(c.p99), durString(c.cpuPerReq), c.switchesPerReq, bytesString(c.peakRSS))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// writeTargets checks the performance targets of issue 16, one row each:
// what was measured and whether the target is met.
func (r results) writeTargets(b *bytes.Buffer) {
	ref := r.reference
	p := r.plan
	fmt.Fprintf(b, "The steady cells (the CPU and p99 targets, and 16 KiB at 50 connections) were each run %s: every connection was opened and greeted first, then all of them made round trips for %v, and only that phase was measured (the server's CPU time and context switches were read when it began and as soon as it ended, before the clients closed their connections)",
		timesString(p.reps), p.steady)
	if p.reps > 1 {
		fmt.Fprintf(b, "; the servers took turns, and every measure is the median of that measure over the runs, taken separately. The Python pairs, the 10,000-connection rows and taking clients in use the 64 B grid's cells, each the median of %d runs.", p.repsFor(64))
	} else {
		b.WriteString(". The Python pairs, the 10,000-connection rows and taking clients in use the 64 B grid's cells, each from one run.")
	}
	if ref != "" {
		fmt.Fprintf(b, " The reference is %q.\n\n", ref)
	} else {
		b.WriteString(" This run has no reference server (`-compare`), so the targets that compare with it are not measured.\n\n")
	}
	writeFailedRuns(b, r.targetCells)

	b.WriteString("| target | measured | verdict |\n|---|---|---|\n")
	row := func(target, measured, verdict string) {
		fmt.Fprintf(b, "| %s | %s | %s |\n", target, escapePipes(measured), verdict)
	}
	compared := func(target string, o outcome) { row(target, o.measured, o.verdict) }

	// No Python server beats its Go counterpart in any 64 B cell.
	for _, pair := range []struct{ golang, python string }{
		{"06 goroutines", "py threads"}, {"08 concurrent", "py threads"},
		{"07 poll", "py selectors"}, {"07 epoll", "py selectors"},
	} {
		for _, n := range p.conns {
			target := fmt.Sprintf("%s at least as good as %s at %s (requests/s, p99, CPU per request)", pair.golang, pair.python, connsString(n))
			g, gok := figure(r.cells, pair.golang, n, 64)
			py, pyok := figure(r.cells, pair.python, n, 64)
			switch {
			case !pyok && r.pythonNote != "":
				row(target, r.pythonNote, notMeasured)
			case !pyok:
				row(target, noCell(pair.python, n, 64), notMeasured)
			case py.note != "":
				row(target, pair.python+": "+py.note, notMeasured)
			case !gok:
				row(target, noCell(pair.golang, n, 64), notMeasured)
			case g.note != "":
				row(target, g.note, verdict(false))
			default:
				measured := fmt.Sprintf("%s vs %s req/s; p99 %s vs %s; %s vs %s CPU per request",
					thousands(int(math.Round(g.rps))), thousands(int(math.Round(py.rps))), durString(g.p99), durString(py.p99), durString(g.cpuPerReq), durString(py.cpuPerReq))
				var behind []string
				if g.rps < py.rps {
					behind = append(behind, "requests/s")
				}
				if g.p99 > py.p99 {
					behind = append(behind, "p99")
				}
				if g.cpuPerReq > py.cpuPerReq {
					behind = append(behind, "CPU per request")
				}
				if len(behind) > 0 {
					measured += "; behind on " + andList(behind)
				}
				row(target, measured, verdict(len(behind) == 0))
			}
		}
	}

	// Close to C under steady load.
	cpu := func(c cell) float64 { return float64(c.cpuPerReq) }
	cpuFigures := func(c, c0 cell, ratio float64) string {
		return fmt.Sprintf("%s vs %s (%.2f×); context switches per request %.2f vs %.2f",
			durString(c.cpuPerReq), durString(c0.cpuPerReq), ratio, c.switchesPerReq, c0.switchesPerReq)
	}
	for _, n := range []int{50, 1000} {
		for _, t := range []struct {
			name  string
			limit float64
		}{{"06 goroutines", 1.15}, {"07 epoll", 1.15}, {"07 poll", 1.5}} {
			if t.name == "07 poll" && n != 1000 {
				continue
			}
			target := fmt.Sprintf("%s CPU per request within %s× of the reference at %s, steady load", t.name, limitString(t.limit), connsString(n))
			compared(target, compare(r.targetCells, t.name, ref, n, 64, t.limit, cpu, cpuFigures))
		}
	}
	for _, name := range []string{"06 goroutines", "07 epoll", "07 poll"} {
		target := fmt.Sprintf("%s p99 at 1,000 connections no worse than 1.2× the reference's, steady load", name)
		compared(target, compare(r.targetCells, name, ref, 1000, 64, 1.2,
			func(c cell) float64 { return float64(c.p99) },
			func(c, c0 cell, ratio float64) string {
				return fmt.Sprintf("%s vs %s (%.2f×)", durString(c.p99), durString(c0.p99), ratio)
			}))
	}

	// 06 against 07 with big messages.
	compared("06 goroutines at 16 KiB within 1.3× of 07 epoll's CPU per request at 50 connections, steady load",
		compare(r.targetCells, "06 goroutines", "07 epoll", 50, 16384, 1.3, cpu, cpuFigures))

	// Taking clients in.
	compared(fmt.Sprintf("Taking clients in: 06 goroutines within 1.5× of the reference's CPU per request at 10,000 connections × %d round trips", p.messagesFor(10000, 64)),
		compare(r.cells, "06 goroutines", ref, 10000, 64, 1.5, cpu, cpuFigures))

	// Nothing else gets worse.
	for _, name := range []string{"06 goroutines", "07 poll", "07 epoll", "08 concurrent"} {
		target := fmt.Sprintf("%s holds 10,000 connections, every one served", name)
		c, ok := figure(r.cells, name, 10000, 64)
		switch {
		case !ok:
			row(target, noCell(name, 10000, 64), notMeasured)
		case c.note != "":
			row(target, c.note, verdict(false))
		case c.failed > 0:
			row(target, fmt.Sprintf("%d of %d runs failed: %s", c.failed, c.runs+c.failed, c.failure), verdict(false))
		default:
			want := c.conns * c.messages
			row(target, fmt.Sprintf("%d of %d round trips answered", c.requests, want), verdict(c.requests == want))
		}
	}
	for _, t := range []struct {
		name  string
		limit float64
	}{{"06 goroutines", 8000}, {"07 epoll", 1500}, {"07 poll", 1500}} {
		target := fmt.Sprintf("%s under %s per idle connection", t.name, bytesString(int64(t.limit)))
		i, ok := r.idleOf(t.name)
		switch {
		case !ok:
			row(target, "no idle measurement of "+t.name+" in this run", notMeasured)
		case i.note != "":
			row(target, i.note, verdict(false))
		default:
			row(fmt.Sprintf("%s (%d idle)", target, i.conns), bytesString(int64(i.perConn)), verdict(i.perConn < t.limit))
		}
	}
	for _, name := range []string{"06 goroutines", "07 poll", "07 epoll", "08 concurrent"} {
		target := fmt.Sprintf("%s idle CPU stays 0", name)
		i, ok := r.idleOf(name)
		switch {
		case !ok:
			row(target, "no idle measurement of "+name+" in this run", notMeasured)
		case i.note != "":
			row(target, i.note, verdict(false))
		default:
			row(fmt.Sprintf("%s (%d idle clients, one second)", target, i.conns), fmt.Sprintf("%.0f%% of a core", 100*i.idleCPU), verdict(i.idleCPU == 0))
		}
	}
	b.WriteString("\n")
	r.writeSyscalls(b)
}

// writeSyscalls shows, for every steady cell, what the server did per
// request: its CPU time and context switches, and the system calls perf
// counted over the same phase, by kind. Counts, unlike times, hardly
// depend on how busy the machine is, so they show where the time goes.
func (r results) writeSyscalls(b *bytes.Buffer) {
	if len(r.targetCells) == 0 {
		return
	}
	b.WriteString("#### Where the time goes\n\n")
	if r.perfNote != "" {
		fmt.Fprintf(b, "System calls were not counted in this run: %s.\n\n", r.perfNote)
		return
	}
	b.WriteString("Per request in each steady cell (medians of the runs): the server's CPU time, the part of it in user space (its own code and its language's runtime; the rest is the kernel's, in system calls and the TCP work they start), its context switches, and its system calls as `perf stat` counted them over the same phase (tracepoints `raw_syscalls:sys_enter` and `syscalls:sys_enter_*`). *Waits* are `epoll_wait` and `poll` in a server's own loop and `epoll_pwait` in Go's runtime poller, each shared by the sockets it finds ready. `futex` is threads of one process waking each other or waiting for one another (Go's scheduler handing work to a thread, or waking its monitor thread `sysmon` from its deep sleep); `nanosleep` is `sysmon` sleeping between its rounds, every 20 µs to 10 ms. A single-threaded server makes neither call.\n\n")
	b.WriteString("| server | connections | size | CPU per request | in user space | context switches | system calls | read | write | waits | futex | nanosleep |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range r.targetCells {
		if c.note != "" {
			fmt.Fprintf(b, "| %s | %d | %s | %s |  |  |  |  |  |  |  |  |\n", c.server, c.conns, sizeString(c.size), escapePipes(c.note))
			continue
		}
		if !c.counted {
			fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %.2f | not counted |  |  |  |  |  |\n", c.server, c.conns, sizeString(c.size), durString(c.cpuPerReq), durString(c.userPerReq), c.switchesPerReq)
			continue
		}
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", c.server, c.conns, sizeString(c.size), durString(c.cpuPerReq), durString(c.userPerReq), c.switchesPerReq,
			c.sys.all, c.sys.byKind["read"], c.sys.byKind["write"], c.sys.waits(), c.sys.byKind["futex"], c.sys.byKind["nanosleep"])
	}
	b.WriteString("\n")
	r.writeTakingClientsIn(b)
}

// writeTakingClientsIn shows, per connection, the system calls of the
// 64 B grid cells at 10,000 connections, counted from before the first
// client connected to after the last had gone: what taking a client in,
// serving its two round trips and letting it go cost each server.
func (r results) writeTakingClientsIn(b *bytes.Buffer) {
	var rows []cell
	for _, c := range r.cells {
		if c.size == 64 && c.conns >= takingClientsIn && c.note == "" && c.counted {
			rows = append(rows, c)
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("#### Taking clients in\n\n")
	fmt.Fprintf(b, "Per connection in the 64 B grid cells at %s (medians of the runs), counted by `perf stat` from before the first client connected to after the last had gone: each client is accepted, greeted, makes its round trips and leaves. *In user space* is the part of the CPU time spent outside the kernel: the server's own code and its language's runtime. Go's `net` asks the kernel for every accepted connection's local address (`getsockname`) and adds it to and removes it from the runtime poller (`epoll_ctl`); `shutdown` is the clean close of a goodbye; the log's lines are among the `write` calls, where 06 and 07 write a few dozen at a time and 08 writes those that wait together.\n\n", connsString(rows[0].conns))
	b.WriteString("| server | round trips each | CPU per request | in user space | system calls | accept4 | setsockopt | getsockname | epoll_ctl | read | write | shutdown | close | futex | nanosleep |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range rows {
		per := func(x float64) string { return fmt.Sprintf("%.2f", x*float64(c.messages)) }
		k := c.sys.byKind
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.server, c.messages, durString(c.cpuPerReq), durString(c.userPerReq),
			per(c.sys.all), per(k["accept4"]), per(k["setsockopt"]), per(k["getsockname"]), per(k["epoll_ctl"]), per(k["read"]), per(k["write"]), per(k["shutdown"]), per(k["close"]), per(k["futex"]), per(k["nanosleep"]))
	}
	b.WriteString("\n")
}

const notMeasured = "not measured"

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// outcome is a target's measured column and verdict.
type outcome struct{ measured, verdict string }

// compare checks that a measure of server name is at most limit times
// that of server base, in the cells of one load. A base without figures
// leaves the target not measured; a server under test without them
// fails it.
func compare(cells []cell, name, base string, conns, size int, limit float64,
	measure func(cell) float64, figures func(c, c0 cell, ratio float64) string) outcome {
	c0, ok0 := figure(cells, base, conns, size)
	c, ok := figure(cells, name, conns, size)
	switch {
	case base == "":
		return outcome{"no reference server in this run (`-compare`)", notMeasured}
	case !ok0:
		return outcome{noCell(base, conns, size), notMeasured}
	case c0.note != "":
		return outcome{base + ": " + c0.note, notMeasured}
	case measure(c0) <= 0:
		return outcome{base + " has no figure to compare with (0)", notMeasured}
	case !ok:
		return outcome{noCell(name, conns, size), notMeasured}
	case c.note != "":
		return outcome{c.note, verdict(false)}
	}
	ratio := measure(c) / measure(c0)
	return outcome{figures(c, c0, ratio), verdict(ratio <= limit)}
}

// figure finds a server's cell of one load among cells. A cell that
// failed or was skipped is returned too, with its note; ok is false when
// there is no such cell at all.
func figure(cells []cell, name string, conns, size int) (cell, bool) {
	for _, c := range cells {
		if c.server == name && c.conns == conns && c.size == size {
			return c, true
		}
	}
	return cell{}, false
}

// noCell says that a run has no figures for a server under a load.
func noCell(name string, conns, size int) string {
	return fmt.Sprintf("no %s cell at %s, %s in this run", name, connsString(conns), sizeString(size))
}

// idleOf finds a server's idle measurement.
func (r results) idleOf(name string) (idle, bool) {
	for _, i := range r.idle {
		if i.server == name {
			return i, true
		}
	}
	return idle{}, false
}

// writeFailedRuns lists the cells some of whose runs failed: their
// medians are over the others.
func writeFailedRuns(b *bytes.Buffer, cells []cell) {
	listed := false
	for _, c := range cells {
		if c.failed > 0 && c.note == "" {
			listed = true
			fmt.Fprintf(b, "- %s at %s, %s: %d of %d runs failed (%s); its medians are over the other %d.\n",
				c.server, connsString(c.conns), sizeString(c.size), c.failed, c.runs+c.failed, escapePipes(c.failure), c.runs)
		}
	}
	if listed {
		b.WriteString("\n")
	}
}

// connsString says "1 connection", "1,000 connections".
func connsString(n int) string {
	if n == 1 {
		return "1 connection"
	}
	return thousands(n) + " connections"
}

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// timesString says "once", "twice", "3 times".
func timesString(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

// limitString writes a ratio limit as the issue does: 1.15, 1.5.
func limitString(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// andList joins "a", "b", "c" as "a, b and c".
func andList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

func escapePipes(s string) string { return strings.ReplaceAll(s, "|", "/") }

func sizeString(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// bytesString prints a size in B, KB or MB (powers of 1000, as the
// performance targets are written).
func bytesString(n int64) string {
	switch {
	case n < 0:
		return "-" + bytesString(-n)
	case n < 10_000:
		return fmt.Sprintf("%d B", n)
	case n < 10_000_000:
		return fmt.Sprintf("%.1f KB", float64(n)/1e3)
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
}

func durString(d time.Duration) string {
	switch {
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.2f µs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
}
