//go:build solution

// The reference solution: compare it with your starter.go once your
// tests pass, or when you are stuck.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// readBody reads the body that follows head from br: exactly as many
// bytes as head's Content-Length says, and not one more. Whatever comes
// after it, such as the next reply on a kept-alive connection, stays in
// br.
func readBody(br *bufio.Reader, head []string, limit int64) ([]byte, error) {
	n, err := contentLength(head)
	if err != nil {
		return nil, err
	}
	// Refuse before reading: the length is the server's claim, and
	// make([]byte, n) with a hostile n would take all our memory.
	if n > limit {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", errBodyTooLarge, n, limit)
	}
	body := make([]byte, n)
	// ReadFull keeps reading until it has n bytes: one Read returns
	// whatever has arrived, which may be less.
	got, err := io.ReadFull(br, body)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return body[:got], fmt.Errorf("%w: got %d of %d bytes: %w", errBodyCut, got, n, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return body[:got], err
	}
	return body, nil
}

// contentLength finds the Content-Length header in head. Two headers
// that disagree are refused: two programs on the way could each believe
// a different one, and that mismatch is a known attack.
func contentLength(head []string) (int64, error) {
	found, seen := "", false
	for _, line := range head[min(1, len(head)):] {
		name, value, ok := strings.Cut(line, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			continue
		}
		value = strings.TrimSpace(value)
		if seen && value != found {
			return 0, fmt.Errorf("%w: %q and %q", errBadLength, found, value)
		}
		found, seen = value, true
	}
	if !seen {
		return 0, errNoLength
	}
	// ParseInt would accept "+5" and "-5"; HTTP allows digits only.
	if found == "" || strings.Trim(found, "0123456789") != "" {
		return 0, fmt.Errorf("%w: %q", errBadLength, found)
	}
	n, err := strconv.ParseInt(found, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", errBadLength, found)
	}
	return n, nil
}
