// Step 3 of 08-socketserver: a second handler, the articles' mini ssh.
//
// The article's mini ssh hands each line a client sends to a shell and
// sends back the output: first its size, then the output itself. This
// handler runs only a few harmless programs, never through a shell, and
// answers as the article does: the size, then the output.
//
// Try it: go run ./08-socketserver/steps/3-mini-ssh -handler cmd, then
// printf 'echo 1\necho 22\n' | nc -N 127.0.0.1 9008
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os/exec"
	"strings"
	"time"
)

// A Handler talks to one client, like the handle method of Python's
// BaseRequestHandler. The server closes the connection when Handle
// returns.
type Handler interface {
	Handle(conn net.Conn)
}

// HandlerFunc lets an ordinary function be a Handler.
type HandlerFunc func(conn net.Conn)

// Handle calls f(conn).
func (f HandlerFunc) Handle(conn net.Conn) { f(conn) }

// Server accepts connections and gives each to Handler.
type Server struct {
	Handler    Handler
	Sequential bool // true: one client at a time (TCPServer)
}

// Serve accepts connections on ln and hands each to the handler:
// Python's serve_forever.
func (s *Server) Serve(ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		if s.Sequential {
			// TCPServer: the next Accept waits until this client is done.
			s.handle(conn)
			continue
		}
		// ThreadingTCPServer: this client gets its own goroutine and
		// the loop goes straight back to Accept.
		go s.handle(conn)
	}
}

// handle runs the handler for one connection, then closes it.
func (s *Server) handle(conn net.Conn) {
	defer conn.Close()
	s.Handler.Handle(conn)
}

// upper answers every line with the same line in upper case, as the
// articles' echo server did with data.upper().
func upper(conn net.Conn) {
	lines := bufio.NewScanner(conn)
	for lines.Scan() {
		reply := append(upperASCII(lines.Bytes()), '\n')
		if _, err := conn.Write(reply); err != nil {
			return
		}
	}
}

// upperASCII upper-cases the ASCII letters and passes every other byte
// through, as Python's bytes.upper() does.
func upperASCII(line []byte) []byte {
	out := make([]byte, len(line), len(line)+1)
	for i, b := range line {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		out[i] = b
	}
	return out
}

// ---- the command service ----

// allowed is the whole list of programs a client may run, each with a
// rule for its arguments. Nothing else ever runs.
var allowed = map[string]func(args []string) error{
	"date":     dateArgs,
	"echo":     anyArgs,
	"hostname": noArgs, // with an argument it renames the machine (as root)
	"uptime":   noArgs,
	"whoami":   noArgs,
}

func anyArgs([]string) error { return nil }

func noArgs(args []string) error {
	if len(args) > 0 {
		return errors.New("takes no arguments")
	}
	return nil
}

// dateArgs allows -u and +FORMAT without a field width: other arguments
// can set the clock, and a width such as %2147483647c only pads.
func dateArgs(args []string) error {
	for _, a := range args {
		if a != "-u" && (!strings.HasPrefix(a, "+") || hasFieldWidth(a[1:])) {
			return errors.New("accepts only -u and +FORMAT, with no field width")
		}
	}
	return nil
}

// hasFieldWidth reports whether a date format gives a conversion a
// width: a "%", any of the flags "-_0^#", then a digit from 1 to 9.
func hasFieldWidth(format string) bool {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && strings.IndexByte("-_0^#", format[i]) >= 0 {
			i++
		}
		if i < len(format) && '1' <= format[i] && format[i] <= '9' {
			return true
		}
	}
	return false
}

// cmdHandler reads one command per line and answers each.
type cmdHandler struct{}

func (cmdHandler) Handle(conn net.Conn) {
	lines := bufio.NewScanner(conn)
	for lines.Scan() {
		out := answer(lines.Text())
		// The article's protocol: the size of the output, then the
		// output.
		if _, err := fmt.Fprint(conn, len(out)); err != nil {
			return
		}
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

// answer checks a command line against the allowlist and runs it if it
// passes. strings.Fields splits on spaces only: no quotes, no variables,
// no globbing, and exec starts the program itself, not "sh -c".
func answer(line string) []byte {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return []byte("refused: empty command\n")
	}
	name, args := fields[0], fields[1:]
	check, ok := allowed[name]
	if !ok {
		return []byte(fmt.Sprintf("refused: %q is not an allowed command\n", name))
	}
	if err := check(args); err != nil {
		return []byte(fmt.Sprintf("refused: %s %v\n", name, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// None of the allowed programs prints more than a few lines for a
	// line of arguments, so keeping all of it is safe here.
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		out = append(out, fmt.Sprintf("error: %s: %v\n", name, err)...)
	}
	return out
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9008", "host:port to listen on")
	sequential := flag.Bool("sequential", false, "serve one client at a time, like Python's TCPServer")
	handler := flag.String("handler", "upper", "upper (lines in upper case) or cmd (run an allowed command)")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	srv := &Server{Handler: HandlerFunc(upper), Sequential: *sequential}
	if *handler == "cmd" {
		srv.Handler = cmdHandler{}
	}
	log.Fatal(srv.Serve(ln))
}
