// Message boundaries. TCP carries a stream of bytes, not messages, so
// each protocol says where a message ends: "upper" and the commands end
// each line with a newline, and every reply of "cmd" is a frame, a
// 4-byte length followed by that many bytes.

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// ---- lines ----

// maxLine is the longest line a client may send, newline included. The
// bufio.Reader never grows beyond it, whatever the client sends.
const maxLine = 4096

var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLine)

// readLine returns the next line without its "\n" or "\r\n" (telnet
// sends the latter). A last line without a newline counts too. A line
// that does not fit in r's buffer is an error, not a bigger buffer.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case err == nil:
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, errLineTooLong
	case errors.Is(err, io.EOF) && len(line) > 0:
		// The client's last line had no newline: answer it anyway.
	default:
		return nil, err
	}
	return line, nil
}

// A messageClock times one whole message. The connection a Server hands
// its handler is one (see serverConn).
type messageClock interface {
	BeginMessage()
	EndMessage()
}

// readRequest reads a client's next line. Waiting for its first byte is
// the idle timeout's business; from that byte on, the server's message
// clock runs, so a line trickled a byte at a time cannot take forever.
func readRequest(conn net.Conn, r *bufio.Reader) ([]byte, error) {
	if _, err := r.Peek(1); err != nil {
		return nil, err
	}
	if clock, ok := conn.(messageClock); ok {
		clock.BeginMessage()
		defer clock.EndMessage()
	}
	return readLine(r)
}

// farewell is the last thing a handler tells a client before it hangs
// up, or "" when the client left (or broke the connection) by itself.
func farewell(err error) string {
	var idle *IdleError
	var slow *MessageTimeoutError
	switch {
	case errors.Is(err, ErrServerClosed):
		return "bye: server shutting down\n"
	case errors.As(err, &idle):
		return fmt.Sprintf("bye: idle for %v, closing\n", idle.After)
	case errors.As(err, &slow):
		return fmt.Sprintf("bye: a line took longer than %v to arrive, closing\n", slow.Limit)
	case errors.Is(err, errLineTooLong):
		return fmt.Sprintf("error: %v, closing\n", err)
	}
	return ""
}

// ---- the "upper" handler ----

// upper answers every line with the same line in upper case, as the
// articles' echo server did with data.upper().
func upper(conn net.Conn) {
	lines := bufio.NewReaderSize(conn, maxLine)
	for {
		line, err := readRequest(conn, lines)
		if err != nil {
			if bye := farewell(err); bye != "" {
				io.WriteString(conn, bye)
			}
			return
		}
		reply := append(upperASCII(line), '\n')
		if _, err := conn.Write(reply); err != nil {
			return
		}
	}
}

// upperASCII upper-cases the ASCII letters and passes every other byte
// through, as Python's bytes.upper() does. The reply is exactly as long
// as the line. (bytes.ToUpper would turn each byte that is not UTF-8
// into the 3-byte U+FFFD, and some letters into longer ones: a line of
// 0xFF bytes would come back three times its size.)
func upperASCII(line []byte) []byte {
	out := make([]byte, len(line), len(line)+1)
	for i, b := range line {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		out[i] = b
	}
	return out
}

// ---- length-prefixed frames ----

// A frame is a 4-byte big-endian length followed by that many bytes.
// The reader always knows how much is left of the current reply, so
// replies can be empty, contain any bytes, and follow each other
// without a pause or an acknowledgement.
const maxFrame = 1 << 20

var errFrameTooLarge = fmt.Errorf("frame larger than %d bytes", maxFrame)

// writeFrame sends the header and the payload in one Write, so they
// leave in as few packets as possible.
func writeFrame(w io.Writer, payload []byte) error {
	if len(payload) > maxFrame {
		return errFrameTooLarge
	}
	frame := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(frame, uint32(len(payload)))
	copy(frame[4:], payload)
	_, err := w.Write(frame)
	return err
}

// readFrame reads one frame, however the bytes were split or merged on
// the way. It returns io.EOF only when the stream ended cleanly between
// frames, and io.ErrUnexpectedEOF when it ended inside one. The length
// is checked before any memory is set aside for the payload.
func readFrame(r io.Reader) ([]byte, error) {
	var header [4]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(header[:])
	if size > maxFrame {
		return nil, fmt.Errorf("%w: the header says %d", errFrameTooLarge, size)
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return payload, nil
}
