//go:build solution

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
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

// readHeader reads one header in the layout of writeHeader, however the
// bytes were split on the way. It returns io.EOF when the stream ended
// before the first byte, io.ErrUnexpectedEOF when it ended inside the
// header, and leaves the file's bytes unread.
func readHeader(r io.Reader) (header, error) {
	var h header
	var length [2]byte
	if _, err := io.ReadFull(r, length[:]); err != nil {
		return h, err
	}
	// Check the length before reading the name: the sender chose it.
	n := int(binary.BigEndian.Uint16(length[:]))
	if n < 1 || n > maxName {
		return h, fmt.Errorf("%w: %d bytes long, want 1 to %d", errBadName, n, maxName)
	}
	// The name, the size and the checksum: one read of a known length.
	rest := make([]byte, n+8+sha256.Size)
	if _, err := io.ReadFull(r, rest); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return h, err
	}
	h.name = string(rest[:n])
	h.size = binary.BigEndian.Uint64(rest[n : n+8])
	copy(h.sum[:], rest[n+8:])
	return h, nil
}

// checkName accepts a plain file name and nothing that could lead out of
// the target directory: no separator of any platform, no leading dot
// (".", "..", hidden files, our own temporary files), no drive letter or
// Windows stream (":"), no control character, no invalid UTF-8. Then
// nameTrouble (main.go) refuses what would stay inside but fool or hurt
// whoever handles the file later.
func checkName(name string) error {
	bad := len(name) < 1 || len(name) > maxName ||
		strings.ContainsAny(name, `/\:`) ||
		strings.HasPrefix(name, ".") ||
		!utf8.ValidString(name) ||
		strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 ||
		// A second opinion from the standard library, which on Windows
		// also refuses device names such as CON and NUL.
		!filepath.IsLocal(name)
	if bad {
		return fmt.Errorf("%w %q: only a plain file name is accepted", errBadName, name)
	}
	if err := nameTrouble(name); err != nil {
		return fmt.Errorf("%w %q: %v", errBadName, name, err)
	}
	return nil
}

// receive reads one file from conn, saves it in rc.dir if every check
// passes, and answers "ok\n" or "error: <reason>\n". It returns the
// header (as far as it was read) and the reason for a refusal.
func (rc *receiver) receive(conn io.ReadWriter) (header, error) {
	h, err := rc.save(conn)
	answer := "ok\n"
	if err != nil {
		answer = "error: " + err.Error() + "\n"
	}
	if _, werr := io.WriteString(conn, answer); werr != nil && err == nil {
		// The file is saved, but the sender will not know it.
		err = fmt.Errorf("send the answer: %w", werr)
	}
	return h, err
}

// save does the checks, in the order that costs the receiver least:
// the header before any file exists, the checksum before the name is
// taken.
func (rc *receiver) save(r io.Reader) (header, error) {
	h, err := readHeader(r)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return h, fmt.Errorf("%w: inside the header", errTruncated)
	case err != nil:
		return h, err
	}
	if err := checkName(h.name); err != nil {
		return h, err
	}
	// The size is checked before a single byte of the file is read.
	if h.size > uint64(rc.maxSize) {
		return h, fmt.Errorf("%w: %d bytes, the limit is %d", errTooLarge, h.size, rc.maxSize)
	}
	// So are the name (no file of that name may exist: never overwrite)
	// and the room left in the inbox, which claim sets aside.
	done, err := rc.claim(h.name, h.size)
	if err != nil {
		return h, err
	}
	kept := false
	defer func() { done(kept) }()

	// Write to a temporary file in the same directory, and give it the
	// real name only once the checksum matches: nobody ever sees a
	// partial file under that name, and a refusal leaves nothing behind.
	tmp, err := os.CreateTemp(rc.dir, ".incoming-*")
	if err != nil {
		return h, fmt.Errorf("create a temporary file: %w", err)
	}
	defer func() {
		// Published or not, the temporary name goes: publish made a
		// second name for the file, and the file lives on under it.
		tmp.Close()
		os.Remove(tmp.Name())
	}()

	// Hash while writing: the file is read from the network once, and
	// memory stays at one copy buffer whatever the size.
	sum := sha256.New()
	n, err := io.CopyN(io.MultiWriter(tmp, sum), r, int64(h.size))
	switch {
	case errors.Is(err, io.EOF):
		return h, fmt.Errorf("%w: %d of %d bytes arrived", errTruncated, n, h.size)
	case err != nil:
		return h, fmt.Errorf("receive %q: %w", h.name, err)
	}
	if !bytes.Equal(sum.Sum(nil), h.sum[:]) {
		return h, fmt.Errorf("%w: the file was not saved", errChecksum)
	}
	if err := tmp.Close(); err != nil {
		return h, fmt.Errorf("save %q: %w", h.name, err)
	}
	// publish (main.go) gives the file its real name, never replacing
	// one: os.Rename would silently overwrite a file of that name.
	if err := rc.publish(tmp.Name(), h.name); err != nil {
		return h, err
	}
	kept = true
	return h, nil
}
