package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

func TestSummaryLineOfTheLoadGeneratorIsParsed(t *testing.T) {
	s, err := parseSummary("conns=10 messages=100 requests=1000 seconds=0.052 rps=19230 p50=48us p99=95us")
	require.NoError(t, err)
	assert.Equal(t, 1000, s.requests)
	assert.InDelta(t, 19230, s.rps, 0.1)
	assert.Equal(t, 48*time.Microsecond, s.p50)
	assert.Equal(t, 95*time.Microsecond, s.p99)
}

func TestSummaryWithoutFiguresIsAnError(t *testing.T) {
	_, err := parseSummary("error: connection refused")
	assert.ErrorContains(t, err, "no requests=")
	_, err = parseSummary("requests=10 rps=fast p50=1us p99=2us")
	assert.ErrorContains(t, err, `rps="fast" is not a number`)
}

func TestCPUTimeIsUserPlusSystemTicks(t *testing.T) {
	// The text after ")" of a real /proc/PID/stat line: utime is 250
	// ticks and stime 50, 3 s in all.
	stat := " S 1 123 123 0 -1 4194560 1200 0 0 0 250 50 0 0 20 0 5 0 100 1000000 300"
	user, system, err := parseCPUTicks(stat)
	require.NoError(t, err)
	assert.Equal(t, 2500*time.Millisecond, user)
	assert.Equal(t, 500*time.Millisecond, system)

	_, _, err = parseCPUTicks(" S 1 2")
	assert.Error(t, err)
}

func TestStatusCountersAreReadInBytes(t *testing.T) {
	status := "Name:\tserver\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\n"
	rss, err := parseStatusKB(status, "VmRSS")
	require.NoError(t, err)
	assert.Equal(t, int64(4096*1024), rss)
	_, err = parseStatusKB(status, "VmSwap")
	assert.Error(t, err)
}

func TestContextSwitchesAddTheVoluntaryAndTheForcedOnes(t *testing.T) {
	status := "Name:\tserver\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n"
	n, err := parseSwitches(status)
	require.NoError(t, err)
	assert.Equal(t, int64(127), n)
	_, err = parseSwitches("Name:\tserver\nvoluntary_ctxt_switches:\t120\n")
	assert.Error(t, err, "one of the two counts is missing")
}

func TestOwnProcessCountersCanBeRead(t *testing.T) {
	// The counters come from /proc, which only Linux has.
	if runtime.GOOS != "linux" {
		t.Skip("no /proc on " + runtime.GOOS + ": the driver reports CPU and memory only on Linux")
	}
	_, err := cpuTime(os.Getpid())
	require.NoError(t, err)
	rss, err := memory(os.Getpid(), "VmRSS")
	require.NoError(t, err)
	assert.Positive(t, rss)
}

func TestEveryConnectionGetsAtLeastTwoRoundTrips(t *testing.T) {
	p := fullPlan()
	assert.Equal(t, 2, p.messagesFor(10000, 64))
	assert.Equal(t, 200, p.messagesFor(100, 64))
	assert.Less(t, p.messagesFor(100, 16384), p.messagesFor(100, 64), "big messages get fewer round trips")
}

func TestUpperLoadClientReportsInTheLoadGeneratorsFormat(t *testing.T) {
	// A tiny server speaking lesson 08's "upper" protocol.
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					conn.Write(bytes.ToUpper(line))
				}
			}()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, loadUpper(ctx, ln.Addr().String(), 3, 4, 64, 0, &out))
	s, err := parseSummary(lastLine(out.String()))
	require.NoError(t, err)
	assert.Equal(t, 12, s.requests, "3 connections x 4 round trips")
}

func TestUpperLoadClientFailsWhenTheServerHangsUp(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			conn.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = loadUpper(ctx, ln.Addr().String(), 1, 2, 64, 0, io.Discard)
	assert.ErrorContains(t, err, "after 0 of 2 messages")
}

func TestTargetsTimeThreeRunsOfThreeSecondsOfSteadyLoad(t *testing.T) {
	// The measurements: steady load on connections opened before
	// timing, three rounds of 3 s, medians.
	p := fullPlan()
	assert.Equal(t, 3*time.Second, p.steady)
	assert.Equal(t, 3, p.reps)
	q := quickPlan()
	assert.Equal(t, 500*time.Millisecond, q.steady, "-quick stays within a minute")
	assert.Equal(t, 1, q.reps)
}

func TestOnlyThe64ByteGridCellsAreRepeated(t *testing.T) {
	p := fullPlan()
	assert.Equal(t, 5, p.repsFor(64), "the Python pairs compare 64 B cells: medians of five runs")
	assert.Equal(t, 1, p.repsFor(1024))
	assert.Equal(t, 1, p.repsFor(16384))
}

func TestTargetCellsCompareWithTheReferenceOnlyWhenThereIsOne(t *testing.T) {
	goroutines := server{name: "06 goroutines", kind: "go"}
	poll := server{name: "07 poll", kind: "go"}
	epoll := server{name: "07 epoll", kind: "go"}
	concurrent := server{name: "08 concurrent", kind: "go"}
	ref := server{name: "C epoll (reference)", kind: "external"}

	without := targetGroups(false)
	require.Len(t, without, 1, "06 against 07 at 16 KiB needs no reference")
	assert.Equal(t, 16384, without[0].size)
	assert.Equal(t, 50, without[0].conns)
	assert.True(t, without[0].takes(goroutines))
	assert.True(t, without[0].takes(epoll))
	assert.False(t, without[0].takes(poll))
	assert.False(t, without[0].takes(ref))

	with := targetGroups(true)
	require.Len(t, with, 3)
	for i, n := range []int{50, 1000} {
		g := with[i]
		assert.Equal(t, 64, g.size)
		assert.Equal(t, n, g.conns)
		for _, s := range []server{goroutines, poll, epoll, ref} {
			assert.True(t, g.takes(s), "%s at %d connections", s.name, n)
		}
		assert.False(t, g.takes(concurrent), "08 has no target against the reference")
	}
}

func TestRepeatedRunsTakeTurnsSoDriftWeighsOnEveryServer(t *testing.T) {
	assert.Equal(t, []turn{{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}}, takeTurns(3, 2))
}

func TestSteadyPhaseIsSampledWhenItBeginsAndAsSoonAsItsSummaryArrives(t *testing.T) {
	// The client's output comes through a pipe, a line at a time, as from
	// a real client. The second sample must be taken while the pipe is
	// still open: a real client closes its connections only after it has
	// printed its summary, and exits after that.
	r, w := io.Pipe()
	t.Cleanup(func() { r.Close() })
	samples := make(chan int, 2)
	taken := 0
	type read struct {
		phase steadyPhase
		err   error
	}
	done := make(chan read, 1)
	go func() {
		ph, err := readSteady(r, func() (usage, error) {
			taken++
			samples <- taken
			return usage{cpu: time.Duration(taken) * time.Second, switches: int64(10 * taken)}, nil
		})
		done <- read{ph, err}
	}()
	// write gives the reader a line, failing the test if it is not read.
	write := func(line string) {
		t.Helper()
		written := make(chan error, 1)
		go func() {
			_, err := io.WriteString(w, line)
			written <- err
		}()
		select {
		case err := <-written:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatalf("%q was not read", line)
		}
	}
	sampled := func(after string) int {
		t.Helper()
		select {
		case n := <-samples:
			return n
		case <-time.After(5 * time.Second):
			t.Fatalf("no sample after %s", after)
			return 0
		}
	}
	write("steady conns=2\n")
	assert.Equal(t, 1, sampled("the steady line"))
	write("conns=2 messages=50 requests=100 seconds=0.500 rps=200 p50=40us p99=90us\n")
	assert.Equal(t, 2, sampled("the summary line, with the client's output still open"))
	write("\n")
	require.NoError(t, w.Close())

	select {
	case got := <-done:
		require.NoError(t, got.err)
		assert.Equal(t, usage{cpu: time.Second, switches: 10}, got.phase.before)
		assert.Equal(t, usage{cpu: 2 * time.Second, switches: 20}, got.phase.after)
		assert.Equal(t, 100, got.phase.sum.requests)
		assert.Equal(t, 2, taken, "no sample for the blank line after the summary")
	case <-time.After(5 * time.Second):
		t.Fatal("readSteady did not return at the end of the output")
	}
}

func TestSteadyOutputWithoutBothLinesIsAnError(t *testing.T) {
	none := func() (usage, error) { return usage{}, nil }
	_, err := readSteady(strings.NewReader("conns=2 messages=50 requests=100 seconds=0.500 rps=200 p50=40us p99=90us\n"), none)
	assert.ErrorContains(t, err, `no "steady conns=N" line`, "a summary without a steady phase does not count")
	_, err = readSteady(strings.NewReader("steady conns=2\n"), none)
	assert.ErrorContains(t, err, "no summary after its steady line")
}

func TestUpperLoadClientWithDurationTimesOnlyTheSteadyPhase(t *testing.T) {
	// A server speaking lesson 08's "upper" protocol that counts the
	// lines it answers and the connections that have closed.
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	var answered, closed atomic.Int64
	var handlers sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		handlers.Wait()
	})
	handlers.Add(1)
	go func() {
		defer handlers.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			handlers.Add(1)
			go func() {
				defer handlers.Done()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadBytes('\n')
					if err != nil {
						closed.Add(1)
						return
					}
					answered.Add(1)
					conn.Write(bytes.ToUpper(line))
				}
			}()
		}
	}()

	const conns = 3
	var atSteady, closedAtSummary int64 = -1, -1
	out := &lineWatcher{onLine: func(line string) {
		switch {
		case strings.HasPrefix(line, "steady "):
			atSteady = answered.Load()
		case strings.HasPrefix(line, "conns="):
			closedAtSummary = closed.Load()
		}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, loadUpper(ctx, ln.Addr().String(), conns, 1, 64, 100*time.Millisecond, out))
	require.Len(t, out.lines, 2, "a steady line, then the summary")
	assert.Equal(t, "steady conns=3", out.lines[0])
	s, err := parseSummary(out.lines[1])
	require.NoError(t, err)
	assert.Contains(t, out.lines[1], " seconds=0.100 ", "seconds= is the length of the timed phase")

	assert.Equal(t, int64(conns), atSteady, "before the steady line, each connection made its one untimed round trip, no more")
	assert.Equal(t, int64(0), closedAtSummary, "no connection is closed before the summary line")
	assert.Equal(t, int64(s.requests+2*conns), answered.Load(),
		"besides the counted round trips, each connection made its untimed first one and one that ended after the phase")
}

// lineWatcher is a stdout that calls onLine with each complete line as
// it is written, in the writer's goroutine.
type lineWatcher struct {
	part   string
	lines  []string
	onLine func(string)
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.part += string(p)
	for {
		line, rest, ok := strings.Cut(w.part, "\n")
		if !ok {
			return len(p), nil
		}
		w.part = rest
		w.lines = append(w.lines, line)
		w.onLine(line)
	}
}

func sampleResults() results {
	const us = time.Microsecond
	return results{
		plan:      plan{conns: []int{1, 100, 10000}, sizes: []int{64}, reps: 3, gridReps: 3, steady: 3 * time.Second},
		machine:   machineInfo{syscall: 980 * time.Nanosecond},
		pinNote:   "pinned",
		reference: "C epoll (reference)",
		cells: []cell{
			{server: "06 goroutines", conns: 1, size: 64, messages: 10, requests: 10, rps: 1000, p99: 90 * us, cpuPerReq: 20 * us, runs: 3},
			{server: "06 goroutines", conns: 100, size: 64, messages: 100, requests: 10000, rps: 83000, p99: 1200 * us, cpuPerReq: 10 * us, runs: 3},
			{server: "06 goroutines", conns: 10000, size: 64, messages: 2, requests: 20000, rps: 9000, p99: 9 * time.Millisecond, cpuPerReq: 30 * us, switchesPerReq: 0.39, runs: 3},
			{server: "07 poll", conns: 100, size: 64, messages: 100, note: "failed: client: exit status 1"},
			{server: "07 epoll", conns: 100, size: 64, messages: 100, requests: 10000, rps: 99000, p99: 2000 * us, cpuPerReq: 11 * us, runs: 3},
			{server: "07 epoll", conns: 10000, size: 64, messages: 2, note: "did not finish in 2m0s"},
			{server: "08 concurrent", conns: 100, size: 64, messages: 100, requests: 10000, rps: 70000, p99: 1600 * us, cpuPerReq: 11 * us, runs: 3},
			{server: "08 concurrent", conns: 10000, size: 64, messages: 2, requests: 20000, rps: 11000, p99: 10 * time.Millisecond, cpuPerReq: 80 * us, runs: 2, failed: 1, failure: "did not finish in 2m0s"},
			{server: "py threads", conns: 1, size: 64, messages: 10, requests: 10, rps: 29000, p99: 80 * us, cpuPerReq: 12 * us, runs: 3},
			{server: "py threads", conns: 100, size: 64, messages: 100, requests: 10000, rps: 71000, p99: 1500 * us, cpuPerReq: 12 * us, runs: 3},
			{server: "py selectors", conns: 100, size: 64, messages: 100, requests: 10000, rps: 98000, p99: 2100 * us, cpuPerReq: 9 * us, runs: 3},
			{server: "C epoll (reference)", conns: 10000, size: 64, messages: 2, requests: 20000, rps: 30000, p99: 5 * time.Millisecond, cpuPerReq: 22 * us, switchesPerReq: 0.33, runs: 3},
		},
		targetCells: []cell{
			{server: "06 goroutines", conns: 50, size: 64, steady: 3 * time.Second, cpuPerReq: 11 * us, switchesPerReq: 0.125, p99: time.Millisecond, runs: 3},
			{server: "07 epoll", conns: 50, size: 64, steady: 3 * time.Second, cpuPerReq: 12 * us, switchesPerReq: 0.2, p99: time.Millisecond, runs: 3},
			{server: "C epoll (reference)", conns: 50, size: 64, steady: 3 * time.Second, cpuPerReq: 10 * us, switchesPerReq: 0.1, p99: time.Millisecond, runs: 3},
			{server: "06 goroutines", conns: 50, size: 16384, steady: 3 * time.Second, cpuPerReq: 60 * us, switchesPerReq: 0.5, runs: 3},
			{server: "07 epoll", conns: 50, size: 16384, steady: 3 * time.Second, cpuPerReq: 50 * us, switchesPerReq: 0.4, runs: 3},
		},
		idle: []idle{
			{server: "06 goroutines", conns: 100, rss0: 1e6, rssN: 2e6, perConn: 10000},
			{server: "07 poll", conns: 100, note: "gave up: 6 of 100 clients taken in after 1m0s"},
			{server: "08 concurrent", conns: 100, rss0: 1e6, rssN: 2e6, perConn: 10000, idleCPU: 0.01},
		},
	}
}

func TestTargetsSayMetOrNotMetWithTheFigures(t *testing.T) {
	md := sampleResults().markdown(nil, "")
	assert.Contains(t, md, "; one system call that does no work (getppid) took 0.98 µs;", "the machine line says what a system call costs")
	assert.Contains(t, md, "| 06 goroutines CPU per request within 1.15× of the reference at 50 connections, steady load | 11 µs vs 10 µs (1.10×); context switches per request 0.12 vs 0.10 | met |")
	assert.Contains(t, md, "| 07 epoll CPU per request within 1.15× of the reference at 50 connections, steady load | 12 µs vs 10 µs (1.20×); context switches per request 0.20 vs 0.10 | **not met** |")
	assert.Contains(t, md, "| 07 poll CPU per request within 1.5× of the reference at 1,000 connections, steady load | no C epoll (reference) cell at 1,000 connections, 64 B in this run | not measured |")
	assert.Contains(t, md, "| 06 goroutines holds 10,000 connections, every one served | 20000 of 20000 round trips answered | met |")
	assert.Contains(t, md, "| 07 epoll holds 10,000 connections, every one served | did not finish in 2m0s | **not met** |")
	assert.Contains(t, md, "| 08 concurrent holds 10,000 connections, every one served | 1 of 3 runs failed: did not finish in 2m0s | **not met** |", "every run must serve every connection")
	assert.Contains(t, md, "| 07 poll holds 10,000 connections, every one served | no 07 poll cell at 10,000 connections, 64 B in this run | not measured |")
	assert.Contains(t, md, "| 06 goroutines under 8000 B per idle connection (100 idle) | 10.0 KB | **not met** |")
	assert.NotContains(t, md, "GOMAXPROCS", "the issue settles it: no GOMAXPROCS trick, and no row for one")
}

func TestTargetsSayHowTheSteadyCellsWereMeasured(t *testing.T) {
	md := sampleResults().markdown(nil, "")
	assert.Contains(t, md, "were each run 3 times: every connection was opened and greeted first, then all of them made round trips for 3s, and only that phase was measured")
	assert.Contains(t, md, "the servers took turns, and every measure is the median of that measure over the runs")
	assert.Contains(t, md, "The Python pairs, the 10,000-connection rows and taking clients in use the 64 B grid's cells, each the median of 3 runs.")
	assert.Contains(t, md, "The reference is \"C epoll (reference)\".")

	r := sampleResults()
	r.plan.reps = 1
	md = r.markdown(nil, "")
	assert.Contains(t, md, "were each run once: every connection was opened and greeted first")
	assert.Contains(t, md, "use the 64 B grid's cells, each from one run.")
	assert.NotContains(t, md, "the median of that measure", "one run has no median")
}

func TestPythonPairsAreMetOnlyWhenGoIsAheadOnEveryMeasure(t *testing.T) {
	md := sampleResults().markdown(nil, "")
	assert.Contains(t, md, "| 06 goroutines at least as good as py threads at 100 connections (requests/s, p99, CPU per request) | 83,000 vs 71,000 req/s; p99 1200 µs vs 1500 µs; 10 µs vs 12 µs CPU per request | met |")
	assert.Contains(t, md, "| 08 concurrent at least as good as py threads at 100 connections (requests/s, p99, CPU per request) | 70,000 vs 71,000 req/s; p99 1600 µs vs 1500 µs; 11 µs vs 12 µs CPU per request; behind on requests/s and p99 | **not met** |")
	assert.Contains(t, md, "| 07 epoll at least as good as py selectors at 100 connections (requests/s, p99, CPU per request) | 99,000 vs 98,000 req/s; p99 2000 µs vs 2100 µs; 11 µs vs 9.00 µs CPU per request; behind on CPU per request | **not met** |")
	assert.Contains(t, md, "| 06 goroutines at least as good as py threads at 1 connection (requests/s, p99, CPU per request) | 1,000 vs 29,000 req/s; p99 90 µs vs 80 µs; 20 µs vs 12 µs CPU per request; behind on requests/s, p99 and CPU per request | **not met** |")
	assert.Contains(t, md, "| 07 poll at least as good as py selectors at 100 connections (requests/s, p99, CPU per request) | failed: client: exit status 1 | **not met** |", "a Go server that failed loses")
	assert.Contains(t, md, "| 07 epoll at least as good as py selectors at 1 connection (requests/s, p99, CPU per request) | no py selectors cell at 1 connection, 64 B in this run | not measured |")
	assert.Contains(t, md, "| 08 concurrent at least as good as py threads at 1 connection (requests/s, p99, CPU per request) | no 08 concurrent cell at 1 connection, 64 B in this run | not measured |")
}

func TestPythonPairsAreNotMeasuredWithoutPython(t *testing.T) {
	r := sampleResults()
	var goOnly []cell
	for _, c := range r.cells {
		if !strings.HasPrefix(c.server, "py ") {
			goOnly = append(goOnly, c)
		}
	}
	r.cells = goOnly
	r.pythonNote = "python3 not found: skipping the Python servers"
	md := r.markdown(nil, "")
	assert.Contains(t, md, "| 06 goroutines at least as good as py threads at 100 connections (requests/s, p99, CPU per request) | python3 not found: skipping the Python servers | not measured |")
	assert.Contains(t, md, "| 07 poll at least as good as py selectors at 100 connections (requests/s, p99, CPU per request) | python3 not found: skipping the Python servers | not measured |", "without a Python figure, even a failed Go cell is not judged")
}

func TestBigMessagesAndTakingClientsInHaveTheirOwnTargets(t *testing.T) {
	md := sampleResults().markdown(nil, "")
	assert.Contains(t, md, "| 06 goroutines at 16 KiB within 1.3× of 07 epoll's CPU per request at 50 connections, steady load | 60 µs vs 50 µs (1.20×); context switches per request 0.50 vs 0.40 | met |")
	assert.Contains(t, md, "| Taking clients in: 06 goroutines within 1.5× of the reference's CPU per request at 10,000 connections × 2 round trips | 30 µs vs 22 µs (1.36×); context switches per request 0.39 vs 0.33 | met |")
}

func TestIdleCPUOfEveryGoServerMustStayZero(t *testing.T) {
	md := sampleResults().markdown(nil, "")
	assert.Contains(t, md, "| 06 goroutines idle CPU stays 0 (100 idle clients, one second) | 0% of a core | met |")
	assert.Contains(t, md, "| 08 concurrent idle CPU stays 0 (100 idle clients, one second) | 1% of a core | **not met** |")
	assert.Contains(t, md, "| 07 poll idle CPU stays 0 | gave up: 6 of 100 clients taken in after 1m0s | **not met** |")
	assert.Contains(t, md, "| 07 epoll idle CPU stays 0 | no idle measurement of 07 epoll in this run | not measured |")
}

func TestWithoutAReferenceTheTargetsAgainstItAreNotMeasured(t *testing.T) {
	r := sampleResults()
	r.reference = ""
	md := r.markdown(nil, "")
	assert.Contains(t, md, "This run has no reference server (`-compare`), so the targets that compare with it are not measured.")
	assert.Contains(t, md, "| 06 goroutines CPU per request within 1.15× of the reference at 50 connections, steady load | no reference server in this run (`-compare`) | not measured |")
	assert.Contains(t, md, "| 06 goroutines at 16 KiB within 1.3× of 07 epoll's CPU per request at 50 connections, steady load | 60 µs vs 50 µs (1.20×); context switches per request 0.50 vs 0.40 | met |", "06 against 07 needs no reference")
}

func TestThe64ByteTableShowsMediansOfRepeatedRuns(t *testing.T) {
	md := sampleResults().markdown(nil, "")
	assert.Contains(t, md, "### 64 B messages\n\nEach cell was run 3 times, the servers taking turns; every figure is the median of 3 runs, each measure taken separately.\n\n")
	assert.Contains(t, md, "- 08 concurrent at 10,000 connections, 64 B: 1 of 3 runs failed (did not finish in 2m0s); its medians are over the other 2.\n")
}

func TestPlotsAreWellFormedSVG(t *testing.T) {
	dir := t.TempDir()
	plots, err := sampleResults().writePlots(dir)
	require.NoError(t, err)
	require.Len(t, plots, 3, "throughput, p99 and idle memory")
	for _, p := range plots {
		data, err := os.ReadFile(filepath.Join(dir, p.file))
		require.NoError(t, err)
		d := xml.NewDecoder(bytes.NewReader(data))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			require.NoError(t, err, "%s is not well-formed XML", p.file)
		}
		assert.Contains(t, string(data), "06 goroutines", "%s has a legend", p.file)
	}
}

func TestOnlyTheMarkedBlockOfThePageIsRewritten(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "page.md")
	require.NoError(t, os.WriteFile(page, []byte("intro\n"+beginMarker+"\nold figures\n"+endMarker+"\noutro\n"), 0o644))
	out := filepath.Join(dir, "plots")
	require.NoError(t, os.Mkdir(out, 0o755))
	require.NoError(t, sampleResults().write(options{out: out, page: page}, io.Discard))
	data, err := os.ReadFile(page)
	require.NoError(t, err)
	text := string(data)
	assert.True(t, strings.HasPrefix(text, "intro\n"+beginMarker))
	assert.True(t, strings.HasSuffix(text, endMarker+"\noutro\n"))
	assert.NotContains(t, text, "old figures")
	assert.Contains(t, text, "](plots/throughput-64.svg)", "plot links are relative to the page")
}

func TestRepeatedRunsReportTheMedianOfEachMeasureSeparately(t *testing.T) {
	// Each run has the median of a different measure, so a median that
	// kept one whole run (say, the one with the median CPU per request)
	// would get the others wrong.
	runs := []cell{
		{server: "07 epoll", conns: 1000, size: 64, requests: 30000, rps: 30000, p50: 9 * time.Millisecond, p99: 90 * time.Millisecond, cpuPerReq: 12 * time.Microsecond, peakRSS: 7e6},
		{server: "07 epoll", conns: 1000, size: 64, requests: 30000, rps: 10000, p50: 1 * time.Millisecond, p99: 20 * time.Millisecond, cpuPerReq: 20 * time.Microsecond, peakRSS: 9e6},
		{server: "07 epoll", conns: 1000, size: 64, requests: 30000, rps: 20000, p50: 5 * time.Millisecond, p99: 50 * time.Millisecond, cpuPerReq: 10 * time.Microsecond, peakRSS: 8e6},
		{server: "07 epoll", conns: 1000, size: 64, note: "failed: client: exit status 1"},
	}
	m := median(runs)
	assert.Empty(t, m.note)
	assert.Equal(t, "07 epoll", m.server)
	assert.Equal(t, 1000, m.conns)
	assert.InDelta(t, 20000, m.rps, 0.1, "rps: median of 30000, 10000, 20000")
	assert.Equal(t, 5*time.Millisecond, m.p50, "p50: median of 9, 1, 5 ms")
	assert.Equal(t, 50*time.Millisecond, m.p99, "p99: median of 90, 20, 50 ms")
	assert.Equal(t, 12*time.Microsecond, m.cpuPerReq, "CPU per request: median of 12, 20, 10 µs")
	assert.Equal(t, int64(8e6), m.peakRSS, "peak memory: median of 7, 9, 8 MB")
	assert.Equal(t, 3, m.runs)
	assert.Equal(t, 1, m.failed, "the failed run is counted, not used")
	assert.Equal(t, "failed: client: exit status 1", m.failure, "and its note is kept")

	// An even count takes the mean of the two middle values.
	assert.Equal(t, 15*time.Microsecond, median(runs[1:3]).cpuPerReq, "mean of 20 and 10 µs")

	// When every run failed there is no figure, only the failure.
	assert.Equal(t, "failed: client: exit status 1", median(runs[3:]).note)
}

func TestTargetVerdictsUseTheMedianOfEachMeasure(t *testing.T) {
	ref := []cell{
		{server: "C epoll (reference)", conns: 1000, size: 64, requests: 1, cpuPerReq: 10 * time.Microsecond, switchesPerReq: 0.1, p99: 100 * time.Millisecond},
		{server: "C epoll (reference)", conns: 1000, size: 64, requests: 1, cpuPerReq: 10 * time.Microsecond, switchesPerReq: 0.1, p99: 100 * time.Millisecond},
		{server: "C epoll (reference)", conns: 1000, size: 64, requests: 1, cpuPerReq: 10 * time.Microsecond, switchesPerReq: 0.1, p99: 100 * time.Millisecond},
	}
	// The run with the median CPU per request (11 µs) has a p99 of 200 ms
	// and 0.1 context switches per request, but the median p99 is 110 ms
	// and the median of the switches 0.12: the verdict must use those.
	epoll := []cell{
		{server: "07 epoll", conns: 1000, size: 64, requests: 1, cpuPerReq: 11 * time.Microsecond, switchesPerReq: 0.1, p99: 200 * time.Millisecond},
		{server: "07 epoll", conns: 1000, size: 64, requests: 1, cpuPerReq: 10 * time.Microsecond, switchesPerReq: 0.3, p99: 110 * time.Millisecond},
		{server: "07 epoll", conns: 1000, size: 64, requests: 1, cpuPerReq: 30 * time.Microsecond, switchesPerReq: 0.12, p99: 90 * time.Millisecond},
	}
	r := results{plan: plan{sizes: []int{64}, reps: 3, gridReps: 3}, reference: "C epoll (reference)",
		targetCells: []cell{median(ref), median(epoll)}}
	md := r.markdown(nil, "")
	assert.Contains(t, md, "| 07 epoll CPU per request within 1.15× of the reference at 1,000 connections, steady load | 11 µs vs 10 µs (1.10×); context switches per request 0.12 vs 0.10 | met |")
	assert.Contains(t, md, "| 07 epoll p99 at 1,000 connections no worse than 1.2× the reference's, steady load | 110.0 ms vs 100.0 ms (1.10×) | met |")
}

func TestFiguresPerRequestKeepTheCPUTimeInUserSpaceApart(t *testing.T) {
	var c cell
	u0 := usage{cpu: time.Second, user: 200 * time.Millisecond, switches: 10}
	u1 := usage{cpu: 3 * time.Second, user: 700 * time.Millisecond, switches: 30}
	c.setFigures(summary{requests: 1000}, u0, u1)
	assert.Equal(t, 2*time.Millisecond, c.cpuPerReq)
	assert.Equal(t, 500*time.Microsecond, c.userPerReq, "of the 2 ms per request, 0.5 ms in user space")
	assert.Equal(t, 0.02, c.switchesPerReq)
}
