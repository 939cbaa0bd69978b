package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

	if len(r.targetCells) > 0 {
		b.WriteString("### Targets\n\n")
		r.writeTargets(&b)
	}

	b.WriteString("### Plots\n\n")
	for _, p := range plots {
		fmt.Fprintf(&b, "![%s](%s%s)\n\n", p.title, prefix, p.file)
	}

	fmt.Fprintf(&b, "### Memory per idle connection\n\n")
	b.WriteString("Resident memory (VmRSS) of the server with N clients that each made one round trip and then sit idle, minus its resident memory with none, divided by N; and the CPU the server used in one second of that idleness.\n\n")
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

// writeTargets compares the lessons' servers with the external reference
// server, target by target, and says which are met.
func (r results) writeTargets(b *bytes.Buffer) {
	find := func(cells []cell, name string, conns int) (cell, bool) {
		for _, c := range cells {
			if c.server == name && c.conns == conns && c.size == 64 && c.note == "" {
				return c, true
			}
		}
		return cell{}, false
	}
	ref := r.reference
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	fmt.Fprintf(b, "Each target cell was run %d times, 64-byte messages; every measure below (CPU per request, context switches per request, p99) is the median of that measure over the runs, taken separately. The reference is %q.\n\n", r.plan.reps, ref)
	anyFailed := false
	for _, c := range r.targetCells {
		if c.failed > 0 {
			anyFailed = true
			fmt.Fprintf(b, "- %s at %d connections: %d of %d runs failed; its medians are over the other %d.\n", c.server, c.conns, c.failed, c.runs+c.failed, c.runs)
		}
	}
	if anyFailed {
		b.WriteString("\n")
	}
	b.WriteString("| target | measured | verdict |\n|---|---|---|\n")
	for _, conns := range []int{50, 1000} {
		c0, ok := find(r.targetCells, ref, conns)
		if !ok {
			fmt.Fprintf(b, "| CPU per request at %d connections | the reference server has no figure | not measured |\n", conns)
			continue
		}
		for _, t := range []struct {
			name  string
			limit float64
			label string
		}{{"06 goroutines", 1.15, "within 15%"}, {"07 epoll", 1.15, "within 15%"}, {"07 poll", 1.5, "within 1.5×"}} {
			if t.name == "07 poll" && conns != 1000 {
				continue
			}
			c, ok := find(r.targetCells, t.name, conns)
			if !ok {
				fmt.Fprintf(b, "| %s CPU per request %s of the reference at %d connections | no figure | **not met** |\n", t.name, t.label, conns)
				continue
			}
			ratio := float64(c.cpuPerReq) / float64(c0.cpuPerReq)
			fmt.Fprintf(b, "| %s CPU per request %s of the reference at %d connections | %s vs %s (%.2f×); context switches per request %.2f vs %.2f | %s |\n",
				t.name, t.label, conns, durString(c.cpuPerReq), durString(c0.cpuPerReq), ratio, c.switchesPerReq, c0.switchesPerReq, verdict(ratio <= t.limit))
		}
	}
	if c0, ok := find(r.targetCells, ref, 1000); ok {
		for _, name := range []string{"06 goroutines", "07 epoll", "07 poll"} {
			if c, ok := find(r.targetCells, name, 1000); ok {
				ratio := float64(c.p99) / float64(c0.p99)
				fmt.Fprintf(b, "| %s p99 at 1,000 connections no worse than 1.2× the reference's | %s vs %s (%.2f×) | %s |\n",
					name, durString(c.p99), durString(c0.p99), ratio, verdict(ratio <= 1.2))
			}
		}
	}
	for _, name := range []string{"06 goroutines", "07 poll", "07 epoll"} {
		var found *cell
		for i, c := range r.cells {
			if c.server == name && c.conns == 10000 && c.size == 64 {
				found = &r.cells[i]
			}
		}
		switch {
		case found == nil:
			fmt.Fprintf(b, "| %s holds 10,000 connections, every one served | not in this run | not measured |\n", name)
		case found.note != "":
			fmt.Fprintf(b, "| %s holds 10,000 connections, every one served | %s | **not met** |\n", name, escapePipes(found.note))
		default:
			want := found.conns * found.messages
			fmt.Fprintf(b, "| %s holds 10,000 connections, every one served | %d of %d round trips answered | %s |\n", name, found.requests, want, verdict(found.requests == want))
		}
	}
	for _, t := range []struct {
		name  string
		limit float64
	}{{"06 goroutines", 8000}, {"07 epoll", 1500}, {"07 poll", 1500}} {
		for _, i := range r.idle {
			if i.server != t.name {
				continue
			}
			if i.note != "" {
				fmt.Fprintf(b, "| %s under %s per idle connection | %s | **not met** |\n", t.name, bytesString(int64(t.limit)), escapePipes(i.note))
				continue
			}
			fmt.Fprintf(b, "| %s under %s per idle connection (%d idle) | %s | %s |\n", t.name, bytesString(int64(t.limit)), i.conns, bytesString(int64(i.perConn)), verdict(i.perConn < t.limit))
		}
	}
	b.WriteString("\n")
	// Not a target: the same loop with a second, idle processor.
	var lines []string
	for _, conns := range []int{50, 1000} {
		c0, ok0 := find(r.targetCells, ref, conns)
		c, ok := find(r.targetCells, twoProcessors, conns)
		one, ok1 := find(r.targetCells, "07 epoll", conns)
		if ok0 && ok && ok1 && c0.cpuPerReq > 0 {
			lines = append(lines, fmt.Sprintf("at %d connections, %s per request (%.2f× the reference; 07 epoll with one processor: %s) and %.2f context switches per request (07 epoll: %.2f)",
				conns, durString(c.cpuPerReq), float64(c.cpuPerReq)/float64(c0.cpuPerReq), durString(one.cpuPerReq), c.switchesPerReq, one.switchesPerReq))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(b, "Not a target, for comparison: %q, the same server on the same one core with GOMAXPROCS=2, so that Go's scheduler has a second, idle processor and no reason to take the loop's while it sleeps in `epoll_wait`: %s.\n\n", twoProcessors, strings.Join(lines, "; "))
	}
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
