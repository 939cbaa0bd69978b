package main

import (
	"fmt"
	"time"
)

// encode turns a moment into the 4 bytes on the wire: whole seconds
// since the epoch, most significant byte first.
func Example_encode() {
	at := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	fmt.Printf("% x\n", encode(at, false)) // seconds since 1970
	fmt.Printf("% x\n", encode(at, true))  // since 1900, for RFC 868
	// Output:
	// 67 d4 46 a6
	// eb 7e c5 26
}

// decode reads the 4 bytes back, taking the moment nearest the
// client's own clock: right on either side of the 2036 wrap, where
// RFC 868's count starts again at 0.
func Example_decode() {
	clock := time.Date(2036, 2, 7, 6, 0, 0, 0, time.UTC)
	for _, wire := range [][]byte{{0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 0}, {1, 2, 3}} {
		t, err := decode(wire, true, clock)
		fmt.Println(t.Format(time.RFC3339), err)
	}
	// Output:
	// 2036-02-07T06:28:15Z <nil>
	// 2036-02-07T06:28:16Z <nil>
	// 0001-01-01T00:00:00Z a time reply is exactly 4 bytes, got 3
}

// isRequest says which datagrams ask for the time. A reply is 4 bytes,
// so 4 bytes never do, and nothing but zero bytes does: no reply can
// ever be taken for a request.
func Example_isRequest() {
	for _, datagram := range [][]byte{{}, {0, 0, 0, 0, 0}, {0, 0, 0, 0}, {0x67, 0xd4, 0x46, 0xa6}, []byte("time?")} {
		fmt.Printf("%q %v, with -rfc868 %v\n", datagram, isRequest(datagram, false), isRequest(datagram, true))
	}
	// Output:
	// "" true, with -rfc868 true
	// "\x00\x00\x00\x00\x00" true, with -rfc868 false
	// "\x00\x00\x00\x00" false, with -rfc868 false
	// "g\xd4F\xa6" false, with -rfc868 false
	// "time?" false, with -rfc868 false
}

// An address without a host is a common slip on the command line:
// checkHostPort says so, with the form to write instead.
func Example_checkHostPort() {
	fmt.Println(checkHostPort("127.0.0.1:9009"))
	fmt.Println(checkHostPort("9009"))
	// Output:
	// <nil>
	// address 9009: missing port in address (write host:port, e.g. 127.0.0.1:9009 or :9009)
}
