package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPerfStatCountsAreReadByKind(t *testing.T) {
	out := "# started on Thu Dec  3 12:30:27 2026\n\n" +
		"23000,,raw_syscalls:sys_enter,265731157,100.00,,\n" +
		"10000,,syscalls:sys_enter_read,265731157,100.00,,\n" +
		"10000,,syscalls:sys_enter_write,265731157,100.00,,\n" +
		"<not counted>,,syscalls:sys_enter_poll,0,100.00,,\n" +
		"3000,,syscalls:sys_enter_futex,265731157,100.00,,\n"
	s, err := parsePerfStat(out)
	require.NoError(t, err)
	per := s.perRequest(10000)
	assert.InDelta(t, 2.3, per.all, 1e-9)
	assert.InDelta(t, 1.0, per.byKind["read"], 1e-9)
	assert.InDelta(t, 0.3, per.byKind["futex"], 1e-9)
	assert.Zero(t, per.waits(), "a kind perf did not count counts as none")

	_, err = parsePerfStat("# started on Thu Dec  3\n\n<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n")
	assert.ErrorContains(t, err, "no raw_syscalls:sys_enter count")
}

func TestWhereTheTimeGoesShowsSystemCallsPerRequestOrWhyNot(t *testing.T) {
	counted := cell{server: "07 epoll", conns: 50, size: 64, cpuPerReq: 6 * time.Microsecond, userPerReq: 1500 * time.Nanosecond, switchesPerReq: 0.05, counted: true,
		sys: syscallCounts{all: 2.25, byKind: map[string]float64{"read": 1, "write": 1, "epoll_wait": 0.15, "epoll_pwait": 0.05, "futex": 0.03, "nanosleep": 0.02}}}
	r := results{targetCells: []cell{counted, {server: "06 goroutines", conns: 50, size: 64, cpuPerReq: 7 * time.Microsecond, userPerReq: 2 * time.Microsecond, switchesPerReq: 0.04}}}
	var b bytes.Buffer
	r.writeSyscalls(&b)
	assert.Contains(t, b.String(), "| 07 epoll | 50 | 64 B | 6.00 µs | 1.50 µs | 0.05 | 2.25 | 1.00 | 1.00 | 0.20 | 0.03 | 0.02 |")
	assert.Contains(t, b.String(), "| 06 goroutines | 50 | 64 B | 7.00 µs | 2.00 µs | 0.04 | not counted |")

	r.perfNote = "perf is not installed"
	b.Reset()
	r.writeSyscalls(&b)
	assert.Contains(t, b.String(), "System calls were not counted in this run: perf is not installed.")
}

func TestTheMedianOfCountedRunsIsTakenKindByKind(t *testing.T) {
	run := func(all, futex float64) cell {
		return cell{server: "06 goroutines", requests: 100, counted: true, sys: syscallCounts{all: all, byKind: map[string]float64{"futex": futex}}}
	}
	m := median([]cell{run(3, 0.5), run(2, 0.1), run(4, 0.2)})
	require.True(t, m.counted)
	assert.Equal(t, 3.0, m.sys.all)
	assert.Equal(t, 0.2, m.sys.byKind["futex"])
}

func TestTakingClientsInCountsSystemCallsPerConnection(t *testing.T) {
	c := cell{server: "C epoll (reference)", conns: 10000, size: 64, messages: 2, cpuPerReq: 20 * time.Microsecond, userPerReq: 500 * time.Nanosecond, counted: true,
		sys: syscallCounts{all: 5.5, byKind: map[string]float64{"accept4": 0.5, "read": 1.5, "write": 1.5, "close": 0.5}}}
	var b bytes.Buffer
	results{cells: []cell{c, {server: "06 goroutines", conns: 10000, size: 64, messages: 2}}}.writeTakingClientsIn(&b)
	assert.Contains(t, b.String(), "| C epoll (reference) | 2 | 20 µs | 0.50 µs | 11.00 | 1.00 | 0.00 | 0.00 | 0.00 | 3.00 | 3.00 | 0.00 | 1.00 | 0.00 | 0.00 |")
	assert.NotContains(t, b.String(), "| 06 goroutines |", "a cell whose calls were not counted has no row")

	b.Reset()
	results{}.writeTakingClientsIn(&b)
	assert.Empty(t, b.String(), "no counted cell, no table")
}
