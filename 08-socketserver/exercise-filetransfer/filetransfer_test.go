//go:build exercise || solution

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step of a test, so a broken receiver fails
// the test instead of hanging it.
const wait = 5 * time.Second

// ---- the header ----

// handMade builds a header byte by byte from the README's table, not
// with writeHeader, so the tests pin the layout itself.
func handMade(name string, size uint64, sum [32]byte) []byte {
	var b []byte
	b = append(b, byte(len(name)>>8), byte(len(name)))
	b = append(b, name...)
	for shift := 56; shift >= 0; shift -= 8 {
		b = append(b, byte(size>>shift))
	}
	return append(b, sum[:]...)
}

func TestHeaderLayoutIsExactlyAsTheReadmeSays(t *testing.T) {
	sum := sha256.Sum256([]byte("hello, file\n"))
	wire := handMade("hello.txt", 12, sum)
	require.Len(t, wire, 2+9+8+32)

	h, err := readHeader(bytes.NewReader(wire))
	require.NoError(t, err)
	assert.Equal(t, header{name: "hello.txt", size: 12, sum: sum}, h)

	// The sender in main.go writes the same bytes.
	var sent bytes.Buffer
	require.NoError(t, writeHeader(&sent, h))
	assert.Equal(t, wire, sent.Bytes())
}

func TestReadHeaderWorksWhenBytesArriveOneAtATime(t *testing.T) {
	sum := sha256.Sum256(nil)
	wire := handMade("one-by-one.bin", 1<<40, sum)
	h, err := readHeader(iotest.OneByteReader(bytes.NewReader(wire)))
	require.NoError(t, err)
	assert.Equal(t, header{name: "one-by-one.bin", size: 1 << 40, sum: sum}, h)
}

func TestReadHeaderLeavesTheFileBytesUnread(t *testing.T) {
	wire := append(handMade("a.txt", 3, sha256.Sum256([]byte("abc"))), "abcNEXT"...)
	r := bytes.NewReader(wire)
	_, err := readHeader(r)
	require.NoError(t, err)
	rest, _ := io.ReadAll(r)
	assert.Equal(t, "abcNEXT", string(rest), "readHeader must read the header and nothing more")
}

func TestReadHeaderRefusesANameLengthOfZeroOrOver255BeforeReadingIt(t *testing.T) {
	for _, n := range []uint16{0, 256, 65535} {
		// Only the length arrives: a reader that trusted it would wait
		// for the name and get io.ErrUnexpectedEOF instead.
		_, err := readHeader(bytes.NewReader(binary.BigEndian.AppendUint16(nil, n)))
		assert.ErrorIs(t, err, errBadName, "name length %d", n)
	}
	_, err := readHeader(bytes.NewReader([]byte{1, 0}))
	assert.EqualError(t, err, "bad name: 256 bytes long, want 1 to 255")
}

func TestReadHeaderReportsAStreamCutInsideTheHeader(t *testing.T) {
	wire := handMade("cut.txt", 1, sha256.Sum256([]byte("x")))
	_, err := readHeader(bytes.NewReader(nil))
	assert.ErrorIs(t, err, io.EOF, "nothing at all arrived")
	for n := 1; n < len(wire); n++ {
		_, err := readHeader(bytes.NewReader(wire[:n]))
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the stream ended after %d of %d header bytes", n, len(wire))
	}
}

// ---- names ----

func TestCheckNameAcceptsPlainFileNames(t *testing.T) {
	for _, name := range []string{"hello.txt", "report 2024.pdf", "naïve-café.txt", "a..b", "x", strings.Repeat("n", 255)} {
		assert.NoError(t, checkName(name), "%q is a plain file name", name)
	}
}

func TestCheckNameRefusesPathsAndHiddenNames(t *testing.T) {
	for _, name := range []string{
		"", ".", "..", "../x", "../../etc/passwd", "/etc/passwd", "sub/file",
		`..\x`, `C:\Windows\x`, "C:x", "file.txt:stream", ".bashrc", ".incoming-123",
		"nul\x00byte", "line\nbreak", "del\x7f", "bad\xffutf8", strings.Repeat("n", 256),
	} {
		assert.ErrorIs(t, checkName(name), errBadName, "%q must be refused", name)
	}
	assert.EqualError(t, checkName("../x"), `bad name "../x": only a plain file name is accepted`)
}

func TestCheckNameRefusesWindowsDeviceNames(t *testing.T) {
	if runtime.GOOS != "windows" {
		t.Skip("CON and NUL are devices only on Windows; elsewhere they are plain names")
	}
	for _, name := range []string{"CON", "NUL", "nul.txt", "COM1"} {
		assert.ErrorIs(t, checkName(name), errBadName, "%q is a device on Windows", name)
	}
}

// ---- whole transfers through loopback ----

func TestFileMakesARoundTripThroughLoopback(t *testing.T) {
	big := make([]byte, 3<<20+7) // over 1 MiB: many reads and writes
	_, err := rand.Read(big)
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"hello.txt", []byte("hello, file\n")},
		{"empty.txt", nil},
		{"big.bin", big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rx := startReceiver(t, 64<<20)
			path := filepath.Join(t.TempDir(), tc.name)
			require.NoError(t, os.WriteFile(path, tc.content, 0o644))

			h, err := sendFileWithin(t, rx.addr, path, "")
			require.NoError(t, err)
			assert.Equal(t, uint64(len(tc.content)), h.size)

			saved, err := os.ReadFile(filepath.Join(rx.dir, tc.name))
			require.NoError(t, err, "the receiver answered ok, so the file must be there")
			assert.True(t, bytes.Equal(tc.content, saved), "saved bytes differ from the sent ones")
			assert.Equal(t, []string{tc.name}, rx.files(t), "no temporary file may be left behind")
			assert.NoError(t, rx.result(t).err)
		})
	}
}

func TestSameNameIsRefusedAndTheEarlierFileKept(t *testing.T) {
	rx := startReceiver(t, 1024)
	require.Equal(t, "ok\n", rx.send(t, transfer("notes.txt", []byte("first version\n")), true))
	rx.result(t)
	// The second sender is told before it sends a byte of its file.
	reply := rx.send(t, handMade("notes.txt", 7, sha256.Sum256([]byte("second\n"))), false)
	assert.Equal(t, `error: file exists: "notes.txt" was received before; send it under another name`+"\n", reply)
	assert.ErrorIs(t, rx.result(t).err, errExists)
	saved, err := os.ReadFile(filepath.Join(rx.dir, "notes.txt"))
	require.NoError(t, err)
	assert.Equal(t, "first version\n", string(saved), "a file is never overwritten")
	assert.Equal(t, []string{"notes.txt"}, rx.files(t))
}

func TestCorruptedPayloadIsRejectedAndNothingIsKept(t *testing.T) {
	rx := startReceiver(t, 1024)
	content := []byte("the bytes the sender meant to send\n")
	wire := transfer("corrupt.txt", content)
	wire[len(wire)-5] ^= 0x01 // one bit flipped on the way

	reply := rx.send(t, wire, true)
	assert.Equal(t, "error: checksum mismatch: the file was not saved\n", reply)
	assert.ErrorIs(t, rx.result(t).err, errChecksum)
	assert.Empty(t, rx.files(t), "the partial file must be deleted before the answer")
}

func TestTruncatedStreamIsRejectedAndNothingIsKept(t *testing.T) {
	t.Run("inside the file", func(t *testing.T) {
		rx := startReceiver(t, 1024)
		wire := transfer("short.txt", []byte("twenty bytes, really"))
		reply := rx.send(t, wire[:len(wire)-10], true) // then the sender half-closes
		assert.Equal(t, "error: stream ended early: 10 of 20 bytes arrived\n", reply)
		assert.ErrorIs(t, rx.result(t).err, errTruncated)
		assert.Empty(t, rx.files(t))
	})
	t.Run("inside the header", func(t *testing.T) {
		rx := startReceiver(t, 1024)
		wire := transfer("short.txt", []byte("abc"))
		reply := rx.send(t, wire[:10], true)
		assert.Equal(t, "error: stream ended early: inside the header\n", reply)
		assert.ErrorIs(t, rx.result(t).err, errTruncated)
		assert.Empty(t, rx.files(t))
	})
}

func TestTraversalNameIsRefusedAndNothingIsWrittenOutside(t *testing.T) {
	rx := startReceiver(t, 1024)
	// rx.dir is root/a/inbox: "../../escaped" would land in root.
	abs := filepath.Join(rx.root, "absolute.txt")
	for _, name := range []string{"../escaped", "../../escaped", abs, "sub/escaped", `..\escaped`, ".hidden"} {
		reply := rx.send(t, transfer(name, []byte("payload\n")), true)
		assert.True(t, strings.HasPrefix(reply, "error: bad name "), "%q: got %q", name, reply)
		assert.ErrorIs(t, rx.result(t).err, errBadName, "%q", name)
	}
	assert.Equal(t, `error: bad name "../escaped": only a plain file name is accepted`+"\n",
		rx.send(t, transfer("../escaped", []byte("payload\n")), true))
	rx.result(t)

	// The whole tree under root holds the two empty directories, no file.
	var found []string
	require.NoError(t, filepath.WalkDir(rx.root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			found = append(found, path)
		}
		return err
	}))
	assert.Empty(t, found, "a refused name must not create a file anywhere")
}

func TestSizeOverTheLimitIsRefusedBeforeTheFileArrives(t *testing.T) {
	rx := startReceiver(t, 1024)
	// Only the header is sent, and the connection stays open: the answer
	// can only come before the file's bytes if the size was checked first.
	wire := handMade("huge.iso", 1<<40, sha256.Sum256(nil))
	reply := rx.send(t, wire, false)
	assert.Equal(t, "error: file too large: 1099511627776 bytes, the limit is 1024\n", reply)
	assert.ErrorIs(t, rx.result(t).err, errTooLarge)
	assert.Empty(t, rx.files(t))
}

func TestFileOfExactlyTheLimitIsAcceptedOneMoreIsNot(t *testing.T) {
	rx := startReceiver(t, 1024)
	assert.Equal(t, "ok\n", rx.send(t, transfer("full.bin", make([]byte, 1024)), true))
	rx.result(t)
	assert.Equal(t, "error: file too large: 1025 bytes, the limit is 1024\n",
		rx.send(t, transfer("over.bin", make([]byte, 1025)), true))
	rx.result(t)
	assert.Equal(t, []string{"full.bin"}, rx.files(t))
}

func TestSenderReportsTheReceiversReason(t *testing.T) {
	rx := startReceiver(t, 1024)
	path := filepath.Join(t.TempDir(), "hello.txt")
	require.NoError(t, os.WriteFile(path, []byte("hello\n"), 0o644))
	_, err := sendFileWithin(t, rx.addr, path, "../escape.txt")
	assert.ErrorIs(t, err, errRefused)
	assert.EqualError(t, err, `refused by the receiver: bad name "../escape.txt": only a plain file name is accepted`)
}

func TestSilentSenderIsToldAndCutOffAfterIdleTimeout(t *testing.T) {
	srv := startProgram(t, "-idle-timeout", "100ms")
	conn := dial(t, srv.addr)
	// Half a header, then silence.
	_, err := conn.Write(handMade("slow.txt", 5, sha256.Sum256(nil))[:5])
	require.NoError(t, err)
	reply, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(reply, "error: "), "got %q", reply)
	assert.Contains(t, srv.out.next(t), "refused a file from")
}

func TestReadmeTranscript(t *testing.T) {
	srv := startProgram(t)
	path := filepath.Join(t.TempDir(), "hello.txt")
	require.NoError(t, os.WriteFile(path, []byte("hello, file\n"), 0o644))

	var client bytes.Buffer
	require.NoError(t, runWithin(t, []string{"-addr", srv.addr, "-send", path}, &client))
	srv.out.next(t) // received ...
	err := runWithin(t, []string{"-addr", srv.addr, "-send", path, "-as", "../escape.txt"}, &client)
	require.Error(t, err)
	client.WriteString("error: " + explain(err) + "\n")
	srv.out.next(t) // refused ...
	assertTranscript(t, "client", client.String())

	srv.stop()
	err = receive(t, srv.done)
	srv.done <- err // for the cleanup, which waits for it too
	require.NoError(t, err)
	assertTranscript(t, "server", srv.out.String())
}

func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},                                   // neither -dir nor -send
		{"-dir", "x", "-send", "y"},          // both
		{"-dir", "x", "-max-size", "-1"},     // a negative limit
		{"-dir", "x", "stray"},               // an argument
		{"-dir", "x", "-idle-timeout", "0s"}, // no timeout
	} {
		err := run(context.Background(), args, nil, io.Discard, io.Discard)
		assert.ErrorIs(t, err, errUsage, "%q", args)
	}
}

// ---- helpers ----

// transfer is a whole, honest transfer: the header, then the bytes.
func transfer(name string, content []byte) []byte {
	return append(handMade(name, uint64(len(content)), sha256.Sum256(content)), content...)
}

// testReceiver is a receiver on a loopback port whose every receive
// result the test can collect.
type testReceiver struct {
	addr, dir, root string
	results         chan result
}

type result struct {
	h   header
	err error
}

// startReceiver serves receive on a loopback listener, with the target
// directory two levels below a fresh root: root/a/inbox.
func startReceiver(t *testing.T, maxSize int64) *testReceiver {
	t.Helper()
	return startReceiverWithin(t, maxSize, 1<<30)
}

// startReceiverWithin is startReceiver with an inbox of maxTotal bytes.
func startReceiverWithin(t *testing.T, maxSize, maxTotal int64) *testReceiver {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "a", "inbox")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	rx := &testReceiver{addr: ln.Addr().String(), dir: dir, root: root, results: make(chan result, 16)}
	rc, err := newReceiver(dir, maxSize, maxTotal)
	require.NoError(t, err)

	var handlers sync.WaitGroup
	handlers.Add(1)
	go func() {
		defer handlers.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // closed by the cleanup below
			}
			handlers.Add(1)
			go func() {
				defer handlers.Done()
				conn.SetDeadline(time.Now().Add(wait))
				h, err := rc.receive(conn)
				closeGracefully(conn)
				rx.results <- result{h, err}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); handlers.Wait() })
	return rx
}

// send writes wire to the receiver, half-closes if asked, and returns
// the answer line.
func (rx *testReceiver) send(t *testing.T, wire []byte, closeWrite bool) string {
	t.Helper()
	conn := dial(t, rx.addr)
	// Write while the answer is awaited: a receiver that refuses early
	// stops reading, and the test wants its answer, not a stuck Write.
	go func() {
		if _, err := conn.Write(wire); err == nil && closeWrite {
			conn.(*net.TCPConn).CloseWrite()
		}
	}()
	reply, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err, "no answer line; got %q", reply)
	// The answer is the last word: hang up, so the receiver's graceful
	// close need not wait for the rest of a refused file.
	conn.Close()
	return reply
}

// result returns what receive returned for the next connection.
func (rx *testReceiver) result(t *testing.T) result {
	t.Helper()
	return receive(t, rx.results)
}

// files lists the names in the target directory.
func (rx *testReceiver) files(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(rx.dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

func sendFileWithin(t *testing.T, addr, path, as string) (header, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return sendFile(ctx, addr, path, as, wait)
}

func runWithin(t *testing.T, args []string, stdout io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return run(ctx, args, nil, stdout, io.Discard)
}

// program is run() serving in this test process, its output captured
// line by line.
type program struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

func startProgram(t *testing.T, args ...string) *program {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &program{out: newLines(), stop: cancel, done: make(chan error, 1)}
	args = append([]string{"-addr", "127.0.0.1:0", "-dir", t.TempDir()}, args...)
	go func() { p.done <- run(ctx, args, nil, p.out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(wait):
			t.Error("the receiver did not stop")
		}
	})
	first := p.out.next(t)
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	p.addr = addr
	return p
}

// receive waits for one value from ch, failing the test if none comes.
func receive[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("nothing received within %v", wait)
		var zero T
		return zero
	}
}

// lines is an io.Writer that keeps every complete line the program
// prints, so a test can wait for a line instead of sleeping. It never
// blocks the program and never drops a line: each line goes to a slice
// under a mutex, and a notify channel of capacity 1 wakes whoever
// waits, who then looks again.
type lines struct {
	mu     sync.Mutex
	all    strings.Builder
	part   string
	got    []string
	read   int // lines already returned by take and next
	notify chan struct{}
}

func newLines() *lines { return &lines{notify: make(chan struct{}, 1)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.part += string(p)
	for {
		line, rest, ok := strings.Cut(l.part, "\n")
		if !ok {
			break
		}
		l.got = append(l.got, line)
		l.part = rest
	}
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// take returns the next line not returned yet, if there is one.
func (l *lines) take() (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.read == len(l.got) {
		return "", false
	}
	l.read++
	return l.got[l.read-1], true
}

// next returns the next line not returned yet, waiting at most wait.
func (l *lines) next(t *testing.T) string {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		if line, ok := l.take(); ok {
			return line
		}
		select {
		case <-l.notify:
		case <-deadline.C:
			t.Fatalf("no line printed within %v; so far:\n%s", wait, l.String())
			return ""
		}
	}
}

// waitFor returns the first line printed, so far or within wait, that
// contains s.
func (l *lines) waitFor(t *testing.T, s string) string {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for _, line := range l.got {
			if strings.Contains(line, s) {
				l.mu.Unlock()
				return line
			}
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-deadline.C:
			t.Fatalf("no line containing %q within %v; so far:\n%s", s, wait, l.String())
			return ""
		}
	}
}

var ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]):\d+`)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring "$ " and "^C" lines and ports.
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
		if !strings.HasPrefix(line, "$ ") && line != "^C" {
			want = append(want, ports.ReplaceAllString(line, "$1:PORT"))
		}
	}
	have := strings.Split(ports.ReplaceAllString(strings.TrimSuffix(got, "\n"), "$1:PORT"), "\n")
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}
