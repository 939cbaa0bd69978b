//go:build linux || darwin

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkRequestReply64B drives the server with the lesson's own load
// generator, in this process: N connections, 64-byte messages, one
// request in flight per connection. Client and server share the
// machine, so the figures are for both ends together.
func BenchmarkRequestReply64B(b *testing.B) {
	for _, poller := range pollerNames() {
		for _, conns := range []int{50, 1000} {
			b.Run(fmt.Sprintf("%s/conns=%d", poller, conns), func(b *testing.B) {
				srv := startServer(b, "-poller", poller, "-max-conns", "2000", "-max-conns-per-ip", "0")
				messages := max(1, b.N/conns)
				var out bytes.Buffer
				cpuBefore := processCPU(b)
				b.ResetTimer()
				err := run(context.Background(), []string{"-client", "-addr", srv.addr, "-poller", poller,
					"-conns", strconv.Itoa(conns), "-messages", strconv.Itoa(messages), "-size", "64"}, nil, &out, os.Stderr)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				cpu := processCPU(b) - cpuBefore
				m := regexp.MustCompile(`requests=(\d+) .*rps=(\d+) p50=(\d+)us p99=(\d+)us`).FindStringSubmatch(out.String())
				if m == nil {
					b.Fatalf("no summary in %q", out.String())
				}
				requests, _ := strconv.ParseFloat(m[1], 64)
				for i, unit := range []string{"req/s", "p50-us", "p99-us"} {
					v, _ := strconv.ParseFloat(m[i+2], 64)
					b.ReportMetric(v, unit)
				}
				b.ReportMetric(float64(cpu.Nanoseconds())/requests, "cpu-ns/req")
				b.ReportMetric(0, "ns/op") // one op is not one request here
			})
		}
	}
}

// BenchmarkIdleConnectionMemory builds the server, runs it as its own
// process, opens 10,000 connections that each take their greeting and
// then stay silent, and reports how much the server's resident memory
// (VmRSS: Go heap, stacks, runtime) grew per connection. Kernel memory
// for the sockets is not in that figure. Linux only: it reads /proc.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads the server's resident memory from /proc, which only Linux has")
	}
	const conns = 10000
	bin := filepath.Join(b.TempDir(), "07-select")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for _, poller := range pollerNames() {
		b.Run(poller, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				perConn := idleMemory(b, bin, poller, conns)
				b.ReportMetric(perConn, "rss-B/conn")
			}
		})
	}
}

func idleMemory(b *testing.B, bin, poller string, conns int) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0", "-poller", poller,
		"-max-conns", strconv.Itoa(2*conns), "-max-conns-per-ip", "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Signal(os.Interrupt)
	lines := bufio.NewScanner(stdout)
	lines.Scan()
	addr, ok := strings.CutPrefix(lines.Text(), "listening on ")
	if !ok {
		b.Fatalf("unexpected first line %q", lines.Text())
	}
	lines.Scan() // "waiting for events with ..."
	go func() {
		for lines.Scan() { // keep the server's log flowing
		}
	}()
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: tcp.Port}
	copy(sa.Addr[:], tcp.IP.To4())

	before := rss(b, cmd.Process.Pid)
	// Plain blocking sockets, so this side holds no Go objects per
	// connection. Each waits for its greeting: then the server holds it.
	fds := make([]int, 0, conns)
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	buf := make([]byte, 256)
	for i := 0; i < conns; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			b.Fatalf("socket %d: %v", i, err)
		}
		fds = append(fds, fd)
		if err := unix.Connect(fd, sa); err != nil {
			b.Fatalf("connect %d: %v", i, err)
		}
		if n, err := unix.Read(fd, buf); err != nil || n == 0 || buf[n-1] != '\n' {
			b.Fatalf("greeting %d: %q %v", i, buf[:max(n, 0)], err)
		}
	}
	after := rss(b, cmd.Process.Pid)
	return float64(after-before) / float64(conns)
}

// rss reads a process's resident set size, in bytes, from /proc.
func rss(b *testing.B, pid int) int {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS line")
	return 0
}

// BenchmarkIdleServerCPU starts a server with no clients and measures
// the CPU time the process uses in one second of idling: the cost of the
// articles' busy loop, and the cost of waiting in the kernel instead.
func BenchmarkIdleServerCPU(b *testing.B) {
	modes := [][]string{{"-busy"}}
	for _, p := range pollerNames() {
		modes = append(modes, []string{"-poller", p})
	}
	for _, args := range modes {
		b.Run(strings.TrimPrefix(args[len(args)-1], "-"), func(b *testing.B) {
			srv := startServer(b, args...)
			srv.out.waitFor(b, "waiting for events with")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				before := processCPU(b)
				<-time.After(time.Second) // the measurement period
				b.ReportMetric(float64((processCPU(b)-before).Microseconds())/1000, "cpu-ms/idle-s")
			}
		})
	}
}

// processCPU is the user plus system CPU time this process has used.
func processCPU(b testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
