//go:build solution

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// readMessage reads one message, however TCP split or merged the bytes:
// exactly 3 bytes of header, then exactly the length it announces. What
// follows stays in r for the next call. It returns io.EOF only when the
// stream ended between messages, io.ErrUnexpectedEOF when it ended
// inside one.
func readMessage(r io.Reader) (message, error) {
	var header [3]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return message{}, err
	}
	// Check the length before setting memory aside for it: the peer
	// chose that number.
	n := int(binary.BigEndian.Uint16(header[1:]))
	if n > maxPayload {
		return message{}, fmt.Errorf("message of %d bytes is %w", n, errTooLarge)
	}
	m := message{kind: header[0], payload: make([]byte, n)}
	if _, err := io.ReadFull(r, m.payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return message{}, err
	}
	return m, nil
}

// handle answers every message on conn: a text with the same text in
// upper case, a ping with a pong carrying the same payload, any other
// type with an error message. The type decides, never the content.
func handle(conn net.Conn) {
	for {
		m, err := readMessage(conn)
		if errors.Is(err, errTooLarge) {
			// The payload was never read, so where the next message
			// starts is unknown: say why, and close.
			writeMessage(conn, message{kind: typeError, payload: []byte(err.Error())})
			return
		}
		if err != nil {
			// The client left (io.EOF), broke off inside a message,
			// went silent, or the server is stopping: no one to answer.
			return
		}
		var reply message
		switch m.kind {
		case typeText:
			reply = message{kind: typeText, payload: upperASCII(m.payload)}
		case typePing:
			reply = message{kind: typePong, payload: m.payload}
		default:
			// The length told us where this message ends, so an unknown
			// type costs one error reply, not the connection.
			reply = message{kind: typeError, payload: []byte(fmt.Sprintf("unknown message type %q", m.kind))}
		}
		if err := writeMessage(conn, reply); err != nil {
			return
		}
	}
}
