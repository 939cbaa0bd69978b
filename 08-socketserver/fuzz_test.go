package main

// Random bytes into every parser: the frame decoder that the cmd client
// relies on, the line reader that both handlers rely on, the cmd
// handler's allowlist check, and upper's reply. Run them longer with
//
//	go test -fuzz=FuzzReadFrame ./08-socketserver
//	go test -fuzz=FuzzReadLine ./08-socketserver
//	go test -fuzz=FuzzCmdAnswer ./08-socketserver
//	go test -fuzz=FuzzUpper ./08-socketserver
//
// The seed corpus lives in testdata/fuzz/<name>/; plain `go test` runs it.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x05hello"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// One byte per Read, as the most fragmented network would
		// deliver it.
		r := iotest.OneByteReader(bytes.NewReader(data))
		consumed := 0
		for {
			payload, err := readFrame(r)
			if err != nil {
				// Only these three ways to stop, and io.EOF only on
				// a frame boundary.
				switch {
				case errors.Is(err, io.EOF):
					if consumed != len(data) {
						t.Fatalf("io.EOF with %d bytes left", len(data)-consumed)
					}
				case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errFrameTooLarge):
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(payload) > maxFrame {
				t.Fatalf("payload of %d bytes exceeds the limit", len(payload))
			}
			// Encoding the payload again gives back exactly the bytes
			// that were read.
			var again bytes.Buffer
			if err := writeFrame(&again, payload); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), data[consumed:consumed+again.Len()]) {
				t.Fatalf("frame does not round-trip")
			}
			consumed += again.Len()
		}
	})
}

func FuzzReadLine(f *testing.F) {
	f.Add([]byte("hello\r\nworld\nlast"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A 16-byte buffer (bufio's smallest) makes long lines common.
		const size = 16
		r := bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), size)
		rest := data
		for {
			line, err := readLine(r)
			if errors.Is(err, io.EOF) {
				if len(rest) != 0 {
					t.Fatalf("io.EOF with %q left", rest)
				}
				return
			}
			if errors.Is(err, errLineTooLong) {
				// Only a line that really was too long, newline
				// included, is refused.
				if i := bytes.IndexByte(rest, '\n'); i >= 0 && i < size {
					t.Fatalf("refused a line of %d bytes", i+1)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if len(line) >= size || bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("line %q is too long or holds a newline", line)
			}
			// The line is a prefix of what is left, followed by
			// "\r\n", "\n" or the end of the input.
			if !bytes.HasPrefix(rest, line) {
				t.Fatalf("line %q is not what came next, %q", line, rest)
			}
			rest = rest[len(line):]
			switch {
			case bytes.HasPrefix(rest, []byte("\r\n")):
				rest = rest[2:]
			case bytes.HasPrefix(rest, []byte("\n")):
				rest = rest[1:]
			case len(rest) == 0:
			default:
				t.Fatalf("line %q ends before %q", line, rest)
			}
		}
	})
}

// FuzzUpper checks that upper's replies never grow: each byte comes back
// as itself, or, for an ASCII lower-case letter, as its capital.
func FuzzUpper(f *testing.F) {
	f.Add([]byte("hello, World"))
	f.Add([]byte("\xff\xfe caf\xc3\xa9 \xe2\x80"))
	f.Fuzz(func(t *testing.T, line []byte) {
		got := upperASCII(line)
		require.Len(t, got, len(line))
		for i, b := range line {
			want := b
			if 'a' <= b && b <= 'z' {
				want = b - 'a' + 'A'
			}
			require.Equal(t, want, got[i], "byte %d of %q", i, line)
		}
	})
}

// FuzzCmdAnswer feeds any line to the cmd handler's allowlist check,
// with a recorder in place of the system. A line is either refused and
// runs nothing, or runs exactly the allowed program it names, with
// exactly the words it typed and arguments that program's rule accepts.
func FuzzCmdAnswer(f *testing.F) {
	for _, seed := range []string{
		"", " ", "date", "date -u +%s", "date -s 00:00", "date; rm -rf /",
		"echo $(whoami) | cat *", "hostname evil", "uptime\x00", "whoami\t-x",
		"/bin/date", "\u00a0date", "ECHO hi", "echo\r", "sh -c date",
		"date +%2147483647c", "date +%%10", "date -u +%-d%_5H",
	} {
		f.Add(seed)
	}
	from := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	f.Fuzz(func(t *testing.T, line string) {
		rec := &recorder{out: []byte("ran\n")}
		h := &cmdHandler{run: rec.run, timeout: wait}
		reply := string(h.answer(from, line))
		require.NotEmpty(t, reply, "every line gets a reply")

		calls := rec.calls()
		if strings.HasPrefix(reply, "refused: ") {
			require.Empty(t, calls, "a refused line %q must run nothing", line)
			return
		}
		require.Len(t, calls, 1, "%q: got %q", line, reply)
		require.Equal(t, "ran\n", reply)
		require.Equal(t, strings.Fields(line), calls[0], "what runs is exactly the words typed")
		check, ok := allowed[calls[0][0]]
		require.True(t, ok, "%q is not on the allowlist, yet it ran", calls[0][0])
		require.NoError(t, check(calls[0][1:]), "arguments the rule refuses ran: %q", calls[0])
	})
}
