// SPDX-License-Identifier: MIT
// gohold: a Go program for the cgroup mode's tests.  Go's net package
// makes raw system calls, so no LD_PRELOAD reaches it.  Go's own keepalive
// is switched off (KeepAlive: -1), so what the kernel shows is kashim's.
//
//	gohold serve PORT     accept one connection on 127.0.0.1:PORT, hold it
//	gohold connect PORT   connect to 127.0.0.1:PORT, hold it
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gohold serve|connect PORT")
		os.Exit(2)
	}
	addr := "127.0.0.1:" + os.Args[2]
	var conn net.Conn
	var err error
	if os.Args[1] == "serve" {
		lc := net.ListenConfig{KeepAlive: -1}
		var l net.Listener
		if l, err = lc.Listen(context.Background(), "tcp", addr); err == nil {
			conn, err = l.Accept()
		}
	} else {
		d := net.Dialer{KeepAlive: -1}
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gohold:", err)
		os.Exit(1)
	}
	fmt.Println("ready", conn.LocalAddr())
	time.Sleep(600 * time.Second)
}
