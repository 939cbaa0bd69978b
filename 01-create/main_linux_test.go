package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestCreatingAnUnknownTypeFailsWithEINVAL(t *testing.T) {
	_, err := newSocket(afInet, 9999, 0)
	assert.ErrorIs(t, err, syscall.EINVAL)
}

func TestCreatingTCPWithTheUDPProtocolFailsWithEPROTONOSUPPORT(t *testing.T) {
	_, err := newSocket(afInet, sockStream, ipprotoUDP)
	assert.ErrorIs(t, err, syscall.EPROTONOSUPPORT)
}

func TestRawSocketNeedsCapNetRaw(t *testing.T) {
	t.Run("with CAP_NET_RAW it is created", func(t *testing.T) {
		if !hasCapNetRaw(t) {
			t.Skip("this process is not root and lacks CAP_NET_RAW")
		}
		s, err := newSocket(afInet, sockRaw, ipprotoICMP)
		require.NoError(t, err)
		closeSocket(s)
	})
	t.Run("without it socket fails with EPERM", func(t *testing.T) {
		if !hasCapNetRaw(t) {
			_, err := newSocket(afInet, sockRaw, ipprotoICMP)
			assert.ErrorIs(t, err, syscall.EPERM)
			assert.Contains(t, explain(err), "(see docs/errors.md#eperm)")
			return
		}
		// As root, run the program again on a thread without CAP_NET_RAW.
		out := runWithoutCapNetRaw(t)
		assert.Contains(t, out, "EPERM (errno 1): socket: operation not permitted")
	})
}

func TestLinuxCapsSO_RCVBUFAtTwiceRmemMax(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skipf("cannot read the limit net.core.rmem_max: %v", err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	if limit > 1<<28 {
		t.Skipf("net.core.rmem_max is %d here, too large to ask for more", limit)
	}
	// Even root gets no more with SO_RCVBUF; SO_RCVBUFFORCE would.
	tcp := mustSocket(t, afInet, sockStream)
	got, err := setAndGet(tcp, solSocket, soRcvBuf, 4*limit)
	require.NoError(t, err)
	assert.Equal(t, 2*limit, got)

	out := runHere(t, "-rcvbuf", strconv.Itoa(4*limit))
	assert.Contains(t, out, fmt.Sprintf("%d  capped: Linux allows at most twice net.core.rmem_max", 2*limit))
}

func TestBindToDeviceTiesTheSocketToOneInterface(t *testing.T) {
	udp := mustSocket(t, afInet, sockDgram)
	name, err := bindToDevice(udp)
	if errors.Is(err, syscall.EPERM) {
		t.Skip("before Linux 5.7, SO_BINDTODEVICE needs CAP_NET_RAW")
	}
	require.NoError(t, err)
	assert.Equal(t, "lo", name)
}

func TestRunClosesEverySocketItOpens(t *testing.T) {
	// The first run also starts the runtime's network poller, which keeps
	// descriptors of its own for the life of the process.
	runHere(t)
	before := openFDs(t)
	runHere(t)
	assert.Equal(t, before, openFDs(t), "descriptors open before and after a run")
}

// The README shows what a learner sees; these tests produce the same run
// and compare it line by line, descriptor numbers and ports aside.

func TestReadmeTranscript(t *testing.T) {
	s, err := newSocket(afInet6, sockStream, 0)
	if err != nil {
		t.Skipf("the README shows a machine with IPv6; here: %v", err)
	}
	closeSocket(s)
	if !hasCapNetRaw(t) {
		assertTranscript(t, "run", runHere(t))
		return
	}
	// The README shows an ordinary user's run, where the raw socket
	// fails. This process is privileged, so the program runs on a thread
	// that has given CAP_NET_RAW up.
	assertTranscript(t, "run", runWithoutCapNetRaw(t))
}

func TestReadmeRawSocketAsRootTranscript(t *testing.T) {
	if !hasCapNetRaw(t) {
		t.Skip("this process is not root and lacks CAP_NET_RAW")
	}
	// The README's command is `sudo /tmp/create | grep -A1 SOCK_RAW`.
	lines := strings.Split(runHere(t), "\n")
	for i, line := range lines {
		if strings.Contains(line, "SOCK_RAW") {
			require.Less(t, i+1, len(lines))
			assertTranscript(t, "raw-as-root", line+"\n"+lines[i+1]+"\n")
			return
		}
	}
	t.Fatal("the program printed no SOCK_RAW line")
}

// ---- helpers ----

// runHere runs the program in this process and returns what it printed.
func runHere(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, run(ctx, args, &out, &out))
	return out.String()
}

// runWithoutCapNetRaw runs the program on an OS thread that has given up
// CAP_NET_RAW, so even root cannot open a raw socket from it. Linux keeps
// capabilities per thread; the goroutine stays locked to that thread, so
// the program's socket() calls happen there. Afterwards the thread takes
// the capability back before it is unlocked; if it cannot, it stays
// locked and the Go runtime ends it rather than reuse it.
func runWithoutCapNetRaw(t *testing.T) string {
	t.Helper()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var saved, reduced [2]unix.CapUserData
		if err := unix.Capget(&hdr, &saved[0]); err != nil {
			done <- result{err: fmt.Errorf("capget: %w", err)}
			return
		}
		reduced = saved
		reduced[unix.CAP_NET_RAW/32].Effective &^= 1 << (unix.CAP_NET_RAW % 32)
		if err := unix.Capset(&hdr, &reduced[0]); err != nil {
			done <- result{err: fmt.Errorf("capset: %w", err)}
			return
		}
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		err := run(ctx, nil, &out, &out)
		if unix.Capset(&hdr, &saved[0]) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{out.String(), err}
	}()
	select {
	case r := <-done:
		require.NoError(t, r.err)
		return r.out
	case <-time.After(wait):
		t.Fatal("the program did not return")
		return ""
	}
}

// hasCapNetRaw reports whether this process may open raw sockets: whether
// CAP_NET_RAW is among its effective capabilities. Root normally has it.
// capget(2) answers for the calling thread, so the goroutine holds on to
// its thread while it asks.
func hasCapNetRaw(t *testing.T) bool {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	require.NoError(t, unix.Capget(&hdr, &data[0]))
	return data[unix.CAP_NET_RAW/32].Effective&(1<<(unix.CAP_NET_RAW%32)) != 0
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

// varying matches what changes from run to run: descriptor numbers and
// the port the kernel picks.
var varying = regexp.MustCompile(`fd=\d+|127\.0\.0\.1:\d+`)

func normalise(s string) string {
	return varying.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "fd=") {
			return "fd=N"
		}
		return "127.0.0.1:PORT"
	})
}

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring the "$ " command lines, the
// descriptor numbers and the ports.
func assertTranscript(t *testing.T, name, got string) {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	marker := "<!-- transcript: " + name + " -->"
	_, after, ok := strings.Cut(string(readme), marker)
	require.True(t, ok, "README.md has no %s", marker)
	_, block, ok := strings.Cut(after, "```console\n")
	require.True(t, ok, "no ```console block after %s", marker)
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok, "unterminated block after %s", marker)

	var want []string
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "$ ") {
			want = append(want, normalise(line))
		}
	}
	have := strings.Split(normalise(strings.TrimSuffix(got, "\n")), "\n")
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}
