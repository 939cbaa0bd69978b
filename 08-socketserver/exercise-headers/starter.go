//go:build !solution

package main

import (
	"io"
	"net"
)

// readMessage reads one message: its 3-byte header, then the payload.
// See README.md for the task.
//
// As it stands it makes the classic mistake: it takes whatever one Read
// returns for one whole message.
func readMessage(r io.Reader) (message, error) {
	// TODO 1: read exactly the 3 header bytes with io.ReadFull, then
	// exactly the length they announce (binary.BigEndian.Uint16), so
	// that what follows stays in r for the next call. Refuse a length
	// over maxPayload BEFORE allocating, with an error wrapping
	// errTooLarge:
	//   message of 5000 bytes is over the limit of 4096
	// Return io.EOF when the stream ends between messages and
	// io.ErrUnexpectedEOF when it ends inside one.
	buf := make([]byte, 3+maxPayload)
	n, err := r.Read(buf)
	if n < 3 {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return message{}, err
	}
	return message{kind: buf[0], payload: buf[3:n]}, nil
}

// handle answers every message on conn until the client leaves.
//
// As it stands it treats every message as text.
func handle(conn net.Conn) {
	for {
		m, err := readMessage(conn)
		if err != nil {
			// TODO 3: a message over the limit gets an error message
			// (type E) whose payload is err.Error(), then the
			// connection closes. Other errors end the loop silently.
			return
		}
		// TODO 2: switch on m.kind. Text (T) gets text in upper case;
		// a ping (P) gets a pong (O) with the same payload; any other
		// type gets an error message and the loop goes on:
		//   unknown message type 'X'
		reply := message{kind: typeText, payload: upperASCII(m.payload)}
		if err := writeMessage(conn, reply); err != nil {
			return
		}
	}
}
