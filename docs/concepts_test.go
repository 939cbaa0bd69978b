package docs

// Behaviour that the chapters in concepts/ describe.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTwoWritesCanArriveAsOneRead(t *testing.T) {
	// TCP keeps no boundaries between writes. Whether two writes merge
	// depends on timing, so the experiment is repeated until they do;
	// on loopback that is almost always the first try.
	for try := 1; try <= 50; try++ {
		client, server := pair(t)
		_, err := server.Write([]byte("hello"))
		require.NoError(t, err)
		_, err = server.Write([]byte("world"))
		require.NoError(t, err)

		buf := make([]byte, 100)
		n, err := client.Read(buf)
		require.NoError(t, err)
		if string(buf[:n]) == "helloworld" {
			t.Logf("two writes arrived as one read on try %d", try)
			return
		}
	}
	t.Fatal("in 50 tries, two writes never arrived as one read")
}

func TestOneWriteCanNeedManyReads(t *testing.T) {
	client, server := pair(t)
	// The reader's kernel buffer is smaller than the message.
	require.NoError(t, client.(*net.TCPConn).SetReadBuffer(16<<10))
	msg := bytes.Repeat([]byte("x"), 1<<20)
	go server.Write(msg)

	buf := make([]byte, len(msg))
	n, err := client.Read(buf)

	require.NoError(t, err)
	assert.Less(t, n, len(msg), "one read should return only part of one 1 MiB write")
}

// writeFrame sends one message as a 4-byte big-endian length followed
// by the message, so the reader knows where it ends.
func writeFrame(w io.Writer, msg []byte) error {
	var head [4]byte
	binary.BigEndian.PutUint32(head[:], uint32(len(msg)))
	if _, err := w.Write(head[:]); err != nil {
		return err
	}
	_, err := w.Write(msg)
	return err
}

// readFrame reads one message written by writeFrame, refusing lengths
// above limit so a bad peer cannot make us allocate gigabytes.
func readFrame(r io.Reader, limit uint32) ([]byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(head[:])
	if size > limit {
		return nil, fmt.Errorf("frame of %d bytes is over the limit of %d", size, limit)
	}
	msg := make([]byte, size)
	_, err := io.ReadFull(r, msg)
	return msg, err
}

func TestLengthPrefixKeepsMessagesApart(t *testing.T) {
	client, server := pair(t)
	go func() {
		writeFrame(server, []byte("hello"))
		writeFrame(server, []byte("world"))
		writeFrame(server, nil)
	}()

	// However the bytes arrive, merged or split, the frames come out
	// exactly as they were sent.
	for _, want := range []string{"hello", "world", ""} {
		got, err := readFrame(client, 1<<20)
		require.NoError(t, err)
		assert.Equal(t, want, string(got))
	}
}

func TestLengthPrefixRefusesAnOversizedFrame(t *testing.T) {
	_, err := readFrame(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}), 1<<20)
	assert.ErrorContains(t, err, "over the limit")
}

func TestUDPKeepsMessageBoundaries(t *testing.T) {
	reader, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { reader.Close() })
	require.NoError(t, reader.SetDeadline(time.Now().Add(wait)))
	conn, err := net.Dial("udp", reader.LocalAddr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })

	_, err = conn.Write([]byte("hello"))
	require.NoError(t, err)
	_, err = conn.Write([]byte("world"))
	require.NoError(t, err)

	// Each read returns exactly one datagram, even with room for both.
	buf := make([]byte, 100)
	for _, want := range []string{"hello", "world"} {
		n, _, err := reader.ReadFrom(buf)
		require.NoError(t, err)
		assert.Equal(t, want, string(buf[:n]))
	}
}

func TestClientsConnectBeforeAnyAccept(t *testing.T) {
	ln := listen(t)

	// Nobody calls Accept, yet the handshakes complete: the kernel
	// queues the connections in the listener's backlog.
	for i := 0; i < 3; i++ {
		conn := dial(t, ln.Addr().String())
		_, err := conn.Write([]byte("queued\n"))
		require.NoError(t, err)
	}

	// Accept then takes them from the queue, data and all.
	require.NoError(t, ln.(*net.TCPListener).SetDeadline(time.Now().Add(wait)))
	conn, err := ln.Accept()
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	readAtLeast(t, conn, 7, "queued\n")
}
