//go:build !solution

package main

//lint:file-ignore U1000 the TODOs below are where checkName and these errors get used

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Each reason to refuse a file has its own error, so tests and callers
// can tell them apart with errors.Is. The receiver sends the text of the
// whole error after "error: ".
var (
	errBadName   = errors.New("bad name")
	errTooLarge  = errors.New("file too large")
	errTruncated = errors.New("stream ended early")
	errChecksum  = errors.New("checksum mismatch")
)

// readHeader reads one header in the layout of writeHeader (main.go),
// however the bytes were split on the way. See README.md for the task.
func readHeader(r io.Reader) (header, error) {
	// TODO 1: read the 2-byte name length with io.ReadFull and
	// binary.BigEndian.Uint16. Refuse a length of 0 or over maxName
	// BEFORE reading the name, with an error that wraps errBadName:
	//   bad name: 300 bytes long, want 1 to 255
	// Then read the name, the 8-byte size and the 32-byte checksum.
	// A stream that ends before the first byte returns io.EOF; one that
	// ends inside the header returns io.ErrUnexpectedEOF. Read nothing
	// of the file's bytes.
	return header{}, errors.New("readHeader is not written yet")
}

// checkName returns nil for a plain file name, and an error wrapping
// errBadName for anything that could lead out of the target directory.
func checkName(name string) error {
	// TODO 2: refuse an empty name or one over maxName bytes, "/", "\"
	// and ":" anywhere, a leading ".", control characters, invalid
	// UTF-8, and whatever filepath.IsLocal refuses. The error reads:
	//   bad name "../x": only a plain file name is accepted
	// Then refuse whatever nameTrouble (main.go) reports, with its
	// reason:
	//   bad name "-x": it starts with -
	return nil
}

// receive reads one file from conn, saves it in rc.dir if every check
// passes, and answers "ok\n" or "error: <reason>\n". It returns the
// header (as far as it was read) and the reason for a refusal.
//
// As it stands it trusts the sender with everything.
func (rc *receiver) receive(conn io.ReadWriter) (header, error) {
	h, err := readHeader(conn)
	if err != nil {
		// TODO 3: answer every refusal with "error: " + err.Error() +
		// "\n", here and below. A stream that ended inside the header
		// is refused with an error that wraps errTruncated:
		//   stream ended early: inside the header
		return h, err
	}

	// TODO 4: call checkName, and refuse a size over rc.maxSize before
	// reading any of the file:
	//   file too large: 2000000 bytes, the limit is 1048576
	// Then rc.claim (main.go) the name and the room in the inbox, and
	// call the function it returns when the transfer ends.

	// TODO 5: write to a temporary file in rc.dir (os.CreateTemp with a
	// pattern starting with a dot) and remove it on every refusal. Copy
	// exactly h.size bytes through a SHA-256 hash as well
	// (io.MultiWriter). A stream that ends early is refused with
	//   stream ended early: 10 of 20 bytes arrived
	// and a checksum that does not match h.sum with
	//   checksum mismatch: the file was not saved
	// Only then close the file and rc.publish (main.go) it under its
	// real name, which never replaces a file; remove the temporary
	// name in any case.
	f, err := os.Create(filepath.Join(rc.dir, h.name))
	if err != nil {
		return h, err
	}
	defer f.Close()
	if _, err := io.CopyN(f, conn, int64(h.size)); err != nil {
		return h, fmt.Errorf("receive %q: %w", h.name, err)
	}
	_, err = io.WriteString(conn, "ok\n")
	return h, err
}
