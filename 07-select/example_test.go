//go:build linux || darwin

package main

import "fmt"

// The load generator sends "xxxx\n". The server read it in two chunks
// and answered each ("OK...xx" and "OK...xx\n"), and the network cut the
// stream in the middle of the second marker. The counter still finds the
// five payload bytes.
func Example_replyCounter() {
	var r replyCounter
	fmt.Println(r.feed([]byte("OK...xx")))
	fmt.Println(r.feed([]byte("OK")))
	fmt.Println(r.feed([]byte("...xx\n")))
	// Output:
	// 2
	// 0
	// 3
}
