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
	d, err := parseCPUTicks(stat)
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, d)

	_, err = parseCPUTicks(" S 1 2")
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
	assert.Equal(t, 100, p.messagesFor(100, 64))
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
	require.NoError(t, loadUpper(ctx, ln.Addr().String(), 3, 4, 64, &out))
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
	err = loadUpper(ctx, ln.Addr().String(), 1, 2, 64, io.Discard)
	assert.ErrorContains(t, err, "after 0 of 2 messages")
}

func TestTargetsMeasureServingNotConnecting(t *testing.T) {
	// With 30,000 round trips spread over 1,000 connections, each would
	// make 30, and accepting and greeting it would weigh on every figure.
	// The targets give each connection at least 200.
	p := fullPlan()
	assert.Equal(t, 600, p.targetMessages(50), "30,000 round trips over 50 connections")
	assert.Equal(t, 200, p.targetMessages(1000), "at least 200 per connection")
}

func TestRepeatedRunsTakeTurnsSoDriftWeighsOnEveryServer(t *testing.T) {
	assert.Equal(t, []turn{{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}}, takeTurns(3, 2))
	assert.Equal(t, 5, fullPlan().reps, "the page says the targets are run five times")
}

func sampleResults() results {
	return results{
		plan:      plan{sizes: []int{64}, reps: 3},
		machine:   machineInfo{syscall: 980 * time.Nanosecond},
		pinNote:   "pinned",
		reference: "C epoll (reference)",
		cells: []cell{
			{server: "06 goroutines", conns: 1, size: 64, messages: 10, requests: 10, rps: 1000, p99: 90 * time.Microsecond, cpuPerReq: 20 * time.Microsecond},
			{server: "06 goroutines", conns: 10000, size: 64, messages: 2, requests: 20000, rps: 9000, p99: 9 * time.Millisecond, cpuPerReq: 20 * time.Microsecond},
			{server: "07 epoll", conns: 10000, size: 64, messages: 2, note: "did not finish in 2m0s"},
		},
		targetCells: []cell{
			{server: "06 goroutines", conns: 50, size: 64, cpuPerReq: 11 * time.Microsecond, switchesPerReq: 0.125, p99: time.Millisecond},
			{server: "07 epoll", conns: 50, size: 64, cpuPerReq: 12 * time.Microsecond, switchesPerReq: 0.2, p99: time.Millisecond},
			{server: "C epoll (reference)", conns: 50, size: 64, cpuPerReq: 10 * time.Microsecond, switchesPerReq: 0.1, p99: time.Millisecond},
		},
		idle: []idle{{server: "06 goroutines", conns: 100, rss0: 1e6, rssN: 2e6, perConn: 10000}},
	}
}

func TestTargetsSayMetOrNotMetWithTheFigures(t *testing.T) {
	md := sampleResults().markdown(nil, "")
	assert.Contains(t, md, "; one system call that does no work (getppid) took 0.98 µs;", "the machine line says what a system call costs")
	assert.Contains(t, md, "| 06 goroutines CPU per request within 15% of the reference at 50 connections | 11 µs vs 10 µs (1.10×); context switches per request 0.12 vs 0.10 | met |")
	assert.Contains(t, md, "| 07 epoll CPU per request within 15% of the reference at 50 connections | 12 µs vs 10 µs (1.20×); context switches per request 0.20 vs 0.10 | **not met** |")
	assert.Contains(t, md, "| 06 goroutines holds 10,000 connections, every one served | 20000 of 20000 round trips answered | met |")
	assert.Contains(t, md, "| 07 epoll holds 10,000 connections, every one served | did not finish in 2m0s | **not met** |")
	assert.Contains(t, md, "| 06 goroutines under 8000 B per idle connection (100 idle) | 10.0 KB | **not met** |")
}

func TestTheTwoProcessorRowIsShownBesideTheTargetsNotAsOne(t *testing.T) {
	r := sampleResults()
	r.targetCells = append(r.targetCells, cell{server: twoProcessors, conns: 50, size: 64, cpuPerReq: 11 * time.Microsecond, switchesPerReq: 0.1})
	md := r.markdown(nil, "")
	assert.Contains(t, md, "Not a target, for comparison: \"07 epoll, GOMAXPROCS=2\"")
	assert.Contains(t, md, "at 50 connections, 11 µs per request (1.10× the reference; 07 epoll with one processor: 12 µs) and 0.10 context switches per request (07 epoll: 0.20).")
	assert.NotContains(t, md, "| 07 epoll, GOMAXPROCS=2", "it has no verdict")
	assert.Contains(t, md, "(07 epoll: 0.20).\n\n### Plots", "a blank line before the next heading")
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
	r := results{plan: plan{sizes: []int{64}, reps: 3}, reference: "C epoll (reference)",
		targetCells: []cell{median(ref), median(epoll)}}
	md := r.markdown(nil, "")
	assert.Contains(t, md, "| 07 epoll CPU per request within 15% of the reference at 1000 connections | 11 µs vs 10 µs (1.10×); context switches per request 0.12 vs 0.10 | met |")
	assert.Contains(t, md, "| 07 epoll p99 at 1,000 connections no worse than 1.2× the reference's | 110.0 ms vs 100.0 ms (1.10×) | met |")
}
