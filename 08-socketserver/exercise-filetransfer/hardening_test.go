//go:build exercise || solution

package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ---- names that stay in the directory but fool or hurt later ----

func TestCheckNameRefusesInvisibleControlAndMisleadingNames(t *testing.T) {
	for name, why := range map[string]string{
		"next\u0085line":  "U+0085, a C1 control (Cc)",
		"csi\u009b31m":    "U+009B, a C1 control (Cc)",
		"line\u2028sep":   "U+2028, a line separator (Zl)",
		"para\u2029sep":   "U+2029, a paragraph separator (Zp)",
		"\u202etxt.exe":   "U+202E, a bidi override (Cf): shows as exe.txt",
		"zero\u200bwidth": "U+200B, invisible (Cf)",
		"\ufeffbom.txt":   "U+FEFF, invisible (Cf)",
		"-x":              "read as an option: rm -x",
		"-rf":             "read as options",
		" ":               "a lone space",
		" lead.txt":       "a leading space",
		"trail.txt ":      "a trailing space",
		"trail.txt   ":    "trailing spaces",
		"dot.":            "a trailing dot, which Windows drops",
		"$(id)":           "a shell expands $ even inside double quotes",
		"`id`":            "a shell expands ` even inside double quotes",
		"*":               "a wildcard, forbidden on Windows",
		"what?.txt":       "a wildcard, forbidden on Windows",
		`say"hi".txt`:     `" is forbidden on Windows`,
		"a|b":             "| is forbidden on Windows",
		"<x>":             "< and > are forbidden on Windows",
	} {
		err := checkName(name)
		assert.ErrorIs(t, err, errBadName, "%q must be refused: %s", name, why)
	}
	assert.EqualError(t, checkName("-x"), `bad name "-x": it starts with -`)
}

func TestCheckNameStillAcceptsOrdinaryPunctuation(t *testing.T) {
	for _, name := range []string{"report (1).txt", "a;b.txt", "naïve café.txt", "x.y.z", "50% off.txt", "a-b_c+d=e", "日本語.txt", "x-"} {
		assert.NoError(t, checkName(name), "%q is a plain file name", name)
	}
}

// ---- the inbox: never overwritten, never past its size ----

func TestANameBeingReceivedIsRefusedToASecondSender(t *testing.T) {
	rx := startReceiver(t, 1024)
	// The first sender sends its header and holds back the file.
	first := dial(t, rx.addr)
	_, err := first.Write(handMade("race.txt", 100, sha256.Sum256(nil)))
	require.NoError(t, err)
	// Once the receiver has claimed the name for it, it writes the file
	// to a temporary one in the inbox, a name starting with a dot: when
	// that appears, the name is taken. (Without this wait, the second
	// sender could come first on a busy machine.)
	require.Eventually(t, func() bool {
		entries, _ := os.ReadDir(rx.dir)
		return slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), ".") })
	}, wait, time.Millisecond, "the first sender's temporary file never appeared in the inbox")
	// The second sender of the same name is refused at once: only one
	// of them could keep the name.
	reply := rx.send(t, handMade("race.txt", 5, sha256.Sum256(nil)), false)
	assert.Equal(t, `error: file exists: "race.txt" was received before; send it under another name`+"\n", reply)
	assert.ErrorIs(t, rx.result(t).err, errExists)
	first.Close()
	assert.ErrorIs(t, rx.result(t).err, errTruncated)
	assert.Empty(t, rx.files(t))
}

func TestInboxRefusesFilesPastItsTotalSize(t *testing.T) {
	rx := startReceiverWithin(t, 8000, 10000)
	assert.Equal(t, "ok\n", rx.send(t, transfer("one.bin", make([]byte, 4000)), true))
	rx.result(t)
	assert.Equal(t, "ok\n", rx.send(t, transfer("two.bin", make([]byte, 4000)), true))
	rx.result(t)
	// 4096 + 4096 are counted (a file costs a block at least); 4000
	// more would pass 10000. The answer comes before the file's bytes.
	reply := rx.send(t, handMade("three.bin", 4000, sha256.Sum256(nil)), false)
	assert.Equal(t, "error: inbox full: 4000 more bytes would pass the limit of 10000 bytes\n", reply)
	assert.ErrorIs(t, rx.result(t).err, errInboxFull)
	assert.Equal(t, []string{"one.bin", "two.bin"}, rx.files(t))

	// Empty files cost a block too, so a flood of them stops as well.
	rx = startReceiverWithin(t, 8000, 10000)
	for _, name := range []string{"e1", "e2"} {
		require.Equal(t, "ok\n", rx.send(t, transfer(name, nil), true))
		rx.result(t)
	}
	assert.True(t, strings.HasPrefix(rx.send(t, transfer("e3", nil), true), "error: inbox full:"))
	assert.ErrorIs(t, rx.result(t).err, errInboxFull)
}

func TestInboxCountsWhatTheDirectoryHeldAtTheStart(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old.bin"), make([]byte, 9000), 0o644))
	rc, err := newReceiver(dir, 8000, 16000)
	require.NoError(t, err)
	_, err = rc.claim("new.bin", 8000)
	assert.ErrorIs(t, err, errInboxFull, "9000 + 8000 is past 16000")
	done, err := rc.claim("new.bin", 6000)
	require.NoError(t, err)
	_, err = rc.claim("more.bin", 4000)
	assert.ErrorIs(t, err, errInboxFull, "9000 + 6000 set aside + 4096 is past 16000")
	done(false) // not kept: the room is given back
	_, err = rc.claim("more.bin", 4000)
	assert.NoError(t, err)
}

// ---- the accept loop: caps, EMFILE, a broken listener ----

func TestSendersBeyondMaxConnsWaitForASlot(t *testing.T) {
	srv := startProgram(t, "-max-conns", "1")
	// The first sender sends half a header and holds its slot.
	first := dial(t, srv.addr)
	_, err := first.Write(handMade("a.txt", 1, sha256.Sum256(nil))[:5])
	require.NoError(t, err)

	// The second waits in the backlog: no answer while the slot is
	// taken. A short read deadline shows it.
	second := dial(t, srv.addr)
	go second.Write(transfer("b.txt", []byte("b\n")))
	require.NoError(t, second.SetReadDeadline(time.Now().Add(150*time.Millisecond)))
	_, err = second.Read(make([]byte, 1))
	require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "no answer while every slot is taken, got %v", err)

	// The first gives up: the second is served.
	first.Close()
	require.NoError(t, second.SetReadDeadline(time.Now().Add(wait)))
	reply, err := bufio.NewReader(second).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "ok\n", reply)
}

func TestOneAddressCannotTakeEverySlot(t *testing.T) {
	srv := startProgram(t, "-max-conns", "2", "-max-conns-per-ip", "1")
	held := dial(t, srv.addr)
	_, err := held.Write(handMade("a.txt", 1, sha256.Sum256(nil))[:5])
	require.NoError(t, err)

	// A second sender from the same address is told why, and the
	// sender says so.
	path := filepath.Join(t.TempDir(), "b.txt")
	require.NoError(t, os.WriteFile(path, []byte("b\n"), 0o644))
	_, err = sendFileWithin(t, srv.addr, path, "")
	assert.ErrorIs(t, err, errRefused)
	assert.EqualError(t, err, "refused by the receiver: too many connections from your address (limit 1), closing")

	// A sender from another address still gets the slot that is left.
	d := net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	other, err := d.Dial("tcp", srv.addr)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2 on this system: %v", err)
	}
	defer other.Close()
	require.NoError(t, other.SetDeadline(time.Now().Add(wait)))
	go other.Write(transfer("c.txt", []byte("c\n")))
	reply, err := bufio.NewReader(other).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "ok\n", reply)
}

func TestLogShowsAtMost32BytesOfASendersName(t *testing.T) {
	srv := startProgram(t)
	long := strings.Repeat("n", 200)
	for _, name := range []string{long, "-" + long} {
		conn := dial(t, srv.addr)
		go conn.Write(transfer(name, []byte("x\n")))
		_, err := bufio.NewReader(conn).ReadString('\n')
		require.NoError(t, err)
		line := srv.out.next(t)
		assert.NotContains(t, line, strings.Repeat("n", 33), "at most 32 of the sender's bytes")
		assert.Contains(t, line, "… (", "and how long the name was")
	}
	assert.Contains(t, srv.out.String(), `received "`+long[:32]+`"… (200 bytes) from`)
	assert.Contains(t, srv.out.String(), `bad name "-`+long[:31]+`"… (201 bytes): it starts with -`)
}

func TestReceiverKeepsAcceptingWhileOutOfFileDescriptors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fake := &failingListener{Listener: ln, errno: syscall.EMFILE, fails: 3}
	rc, err := newReceiver(t.TempDir(), 1024, 1<<20)
	require.NoError(t, err)
	out := newLines()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, fake, rc, wait, testLimits(), out) }()

	// The sender waits in the backlog through three failures, then is
	// served: the receiver backed off and tried again.
	conn := dial(t, ln.Addr().String())
	go conn.Write(transfer("late.txt", []byte("late\n")))
	reply, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "ok\n", reply)
	cancel()
	assert.NoError(t, receive(t, done), "a shutdown is not an error")
	log := out.String()
	assert.Equal(t, 1, strings.Count(log, "accept failed"), "a streak of failures is logged once:\n%s", log)
	assert.Contains(t, log, "docs/errors.md#emfile")
	assert.Contains(t, log, "accepting again after 3 failed attempts")
}

func TestServeReturnsAnErrorWhenItsListenerBreaks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln.Close() // closed under the receiver, not by a shutdown
	rc, err := newReceiver(t.TempDir(), 1024, 1<<20)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- serve(context.Background(), ln, rc, wait, testLimits(), io.Discard) }()
	// main turns this error into exit status 1, so that a supervisor
	// restarts the receiver; a nil here would exit 0.
	assert.ErrorIs(t, receive(t, done), net.ErrClosed)
}

func TestBadLimitFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-dir", "x", "-max-total", "-1"}, {"-dir", "x", "-max-conns", "0"}, {"-dir", "x", "-max-conns-per-ip", "-1"},
	} {
		err := run(context.Background(), args, nil, io.Discard, io.Discard)
		assert.ErrorIs(t, err, errUsage, "%q", args)
	}
}

// testLimits are generous limits for tests of the accept loop.
func testLimits() connLimits {
	return connLimits{max: 10, perIP: &addrCounts{n: map[netip.Addr]int{}}}
}

// failingListener fails its first Accepts with errno, the way a kernel
// out of descriptors does, then accepts for real.
type failingListener struct {
	net.Listener
	errno syscall.Errno
	mu    sync.Mutex
	fails int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept", l.errno)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}
