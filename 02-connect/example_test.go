package main

// Examples of the pure functions a reader may copy: no network, and the
// output below each is checked by go test.

import (
	"fmt"
	"strings"
)

// readHead reads the head of an HTTP reply, however the bytes arrived,
// and stops at the blank line: the body stays unread.
func Example_readHead() {
	reply := strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
	head, err := readHead(reply)
	fmt.Println(err)
	for _, line := range head {
		fmt.Println(line)
	}
	// Output:
	// <nil>
	// HTTP/1.1 200 OK
	// Content-Length: 6
}

// hostHeader leaves out HTTP's own port, and puts an IPv6 address in
// brackets when it needs the port.
func Example_hostHeader() {
	fmt.Println(hostHeader("example.com", 80))
	fmt.Println(hostHeader("127.0.0.1", 8080))
	fmt.Println(hostHeader("::1", 80))
	// Output:
	// example.com
	// 127.0.0.1:8080
	// [::1]:80
}

// parsePort takes a number or a service's name.
func Example_parsePort() {
	for _, s := range []string{"8080", "http", "https", "eighty"} {
		port, err := parsePort(s)
		fmt.Println(s, port, err)
	}
	// Output:
	// 8080 8080 <nil>
	// http 80 <nil>
	// https 443 <nil>
	// eighty 0 want a number from 1 to 65535, or a service name such as http
}
