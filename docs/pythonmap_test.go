package docs

// The differences between Python's socket module and Go's net package
// that python-to-go.md names, each shown on loopback.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteSendsEverythingLikeSendall(t *testing.T) {
	client, server := pair(t)
	// A small receive buffer on the reader: the data cannot all fit in
	// the kernel at once, so Write must wait and keep sending.
	require.NoError(t, server.(*net.TCPConn).SetReadBuffer(16<<10))
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB

	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(server)
		got <- all
	}()
	n, err := client.Write(msg)

	// One call, every byte, or an error: no loop needed, as with sendall.
	require.NoError(t, err)
	assert.Equal(t, len(msg), n)
	require.NoError(t, client.Close())
	select {
	case all := <-got:
		assert.True(t, bytes.Equal(msg, all), "the reader should get all %d bytes, got %d", len(msg), len(all))
	case <-time.After(wait):
		t.Fatal("the reader did not finish")
	}
}

func TestReadMayReturnFewerBytesThanAsked(t *testing.T) {
	client, server := pair(t)
	_, err := server.Write([]byte("abc"))
	require.NoError(t, err)

	// Read returns what has arrived; it does not wait to fill the buffer.
	buf := make([]byte, 1024)
	n, err := client.Read(buf)

	require.NoError(t, err)
	assert.Equal(t, "abc", string(buf[:n]))
}

func TestReadFullWaitsForExactlyNBytes(t *testing.T) {
	client, server := pair(t)
	go func() {
		server.Write([]byte("ab"))
		server.Write([]byte("cd"))
	}()

	// io.ReadFull loops until the buffer is full: Python needs a loop
	// of recv calls for this.
	buf := make([]byte, 4)
	_, err := io.ReadFull(client, buf)

	require.NoError(t, err)
	assert.Equal(t, "abcd", string(buf))
}

func TestDeadlineIsAbsoluteNotPerCall(t *testing.T) {
	client, server := pair(t)
	_, err := server.Write([]byte("a"))
	require.NoError(t, err)

	// One deadline, 100 ms from now. The first read is well within it.
	require.NoError(t, client.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	buf := make([]byte, 1)
	_, err = client.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "a", string(buf))

	// The second read waits for data that does not come, until the
	// deadline passes.
	_, err = client.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)

	// Now data comes, yet the next read fails at once: the deadline is
	// a moment that has passed, not a fresh 100 ms for every call as
	// Python's settimeout gives.
	_, err = server.Write([]byte("b"))
	require.NoError(t, err)
	start := time.Now()
	_, err = client.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Less(t, time.Since(start), 100*time.Millisecond, "the read should fail without waiting")

	// Clearing (or moving) the deadline makes reading work again.
	require.NoError(t, client.SetReadDeadline(time.Time{}))
	_, err = client.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "b", string(buf))
}

func TestEveryReadAfterTheEndReturnsEOF(t *testing.T) {
	client, server := pair(t)
	require.NoError(t, server.Close())

	// Python's recv returns b'' here, forever: a loop that only checks
	// for data spins. Go says io.EOF, every time.
	for i := 0; i < 3; i++ {
		n, err := client.Read(make([]byte, 10))
		assert.Equal(t, 0, n)
		assert.ErrorIs(t, err, io.EOF)
	}
}

func TestCloseWakesABlockedRead(t *testing.T) {
	client, _ := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := client.Read(make([]byte, 10))
		done <- err
	}()

	// Another goroutine closes the connection: the blocked Read returns.
	require.NoError(t, client.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(wait):
		t.Fatal("Close did not wake the blocked Read")
	}
}

func TestDialResolvesAndConnectsInOneCall(t *testing.T) {
	ln := listen(t)
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)

	// Like create_connection(("localhost", port)): a name, resolved and
	// tried address by address until one connects.
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("localhost", port), wait)
	require.NoError(t, err)
	conn.Close()
}

func TestBigEndianUint32IsPythonsStructPackNetworkOrder(t *testing.T) {
	t.Parallel() // starting Python takes a while
	// struct.pack("!I", n) and binary.BigEndian agree byte for byte.
	var buf [4]byte
	binary.BigEndian.PutUint32(buf[:], 0x01020304)
	assert.Equal(t, []byte{1, 2, 3, 4}, buf[:], "the most significant byte first")

	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the comparison with struct.pack itself is skipped")
	}
	out, err := exec.Command(python, "-c", `import struct,sys; sys.stdout.buffer.write(struct.pack("!I", 0x01020304))`).Output()
	require.NoError(t, err)
	assert.Equal(t, buf[:], out)
}

func TestListenerAndConnectionAreDifferentTypes(t *testing.T) {
	// In Python the listening socket and an accepted one are both
	// socket objects, so recv on the wrong one compiles and fails at
	// run time. In Go a Listener has no Read at all.
	ln := listen(t)
	var x any = ln
	_, isReader := x.(io.Reader)
	assert.False(t, isReader, "a net.Listener should not be an io.Reader")
	var y any = dial(t, ln.Addr().String())
	_, isReader = y.(io.Reader)
	assert.True(t, isReader)
}

func TestConnectRefusedIsAnErrorNotACode(t *testing.T) {
	// Python's connect_ex returns errno.ECONNREFUSED; Go's Dial returns
	// an error that errors.Is recognises.
	_, err := net.DialTimeout("tcp", closedPort(t), wait)
	assert.True(t, errors.Is(err, errConnRefused()), "got %v", err)
}
