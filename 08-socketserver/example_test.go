package main

// Examples of the pure functions worth copying. `go test` checks that
// each prints what its "Output:" comment says.

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// A frame is a 4-byte big-endian length, then that many bytes. Two
// frames written back to back form one stream, as TCP may deliver them.
func Example_writeFrame() {
	var stream bytes.Buffer
	writeFrame(&stream, []byte("hi\n"))
	writeFrame(&stream, nil) // an empty reply is a frame too
	fmt.Printf("% x\n", stream.Bytes())
	// Output:
	// 00 00 00 03 68 69 0a 00 00 00 00
}

// readFrame takes one frame off a stream, however it is merged with the
// next one, and says io.EOF only between frames.
func Example_readFrame() {
	stream := bytes.NewReader([]byte("\x00\x00\x00\x03one\x00\x00\x00\x03two"))
	for {
		payload, err := readFrame(stream)
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Printf("%q\n", payload)
	}
	// Output:
	// "one"
	// "two"
	// EOF
}

// A length is checked before any memory is set aside for it.
func Example_readFrame_tooLarge() {
	_, err := readFrame(bytes.NewReader([]byte("\xff\xff\xff\xff")))
	fmt.Println(err)
	// Output:
	// frame larger than 1048576 bytes: the header says 4294967295
}

// readLine drops "\n" or "\r\n" (telnet's), answers a last line without
// a newline, and refuses a line longer than the reader's buffer.
func Example_readLine() {
	r := bufio.NewReaderSize(strings.NewReader("hello\r\nworld\nlast"), 16)
	for {
		line, err := readLine(r)
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Printf("%q\n", line)
	}
	// Output:
	// "hello"
	// "world"
	// "last"
	// EOF
}

// upperASCII changes the ASCII letters only, so a reply is exactly as
// long as its line, whatever bytes it holds.
func Example_upperASCII() {
	fmt.Printf("%q\n", upperASCII([]byte("héllo, \xff world")))
	// Output:
	// "HéLLO, \xff WORLD"
}

// logged keeps a log line short, whatever the client sent.
func Example_logged() {
	fmt.Println(logged("echo hello"))
	fmt.Println(logged(strings.Repeat("x", 5000)))
	// Output:
	// "echo hello"
	// "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"… (5000 bytes)
}

// A field width in a date format can only pad the output, so the
// command service refuses it.
func Example_hasFieldWidth() {
	for _, format := range []string{"%Y-%m-%d", "%-d", "%%10", "%10c", "%_5H", "%2147483647c"} {
		fmt.Println(format, hasFieldWidth(format))
	}
	// Output:
	// %Y-%m-%d false
	// %-d false
	// %%10 false
	// %10c true
	// %_5H true
	// %2147483647c true
}
