// Command go_server is an upcase peer: one goroutine per connection.
//
// Usage: go_server -port 0 -buf 65536
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
)

func handle(conn net.Conn, size int) {
	defer conn.Close()
	buf := make([]byte, size)
	for {
		n, err := conn.Read(buf)
		for i := 0; i < n; i++ {
			if b := buf[i]; b >= 'a' && b <= 'z' {
				buf[i] = b - ('a' - 'A')
			}
		}
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return // EPIPE, ECONNRESET: drop this connection only
			}
		}
		if err != nil {
			// io.EOF is the client's half-close: everything is echoed, so
			// send our FIN. Other errors end the connection the same way.
			conn.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0 picks a free one)")
	size := flag.Int("buf", 65536, "read buffer size in bytes")
	flag.Parse()

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "listening %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		conn, err := ln.Accept()
		if err != nil {
			continue // e.g. EMFILE or an aborted handshake; keep accepting
		}
		go handle(conn, *size)
	}
}
