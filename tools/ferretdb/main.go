// Command ferretdb runs an embedded FerretDB v1 (SQLite backend) for the
// study-tracker test suite and benchmarks.
//
// It exists because `go install .../cmd/ferretdb@v1.24.2` builds a binary that
// panics at start (missing build/version/version.txt, FerretDB issue #2982);
// the embeddable package has no such check.
//
// Usage: ferretdb -listen 127.0.0.1:0 -dir /path/to/data [-parent-pid N]
// On start it prints one line "LISTENING <mongodb-uri>" to stdout.
// With -parent-pid it exits once process N is gone (checked every 500ms), so a
// test process that dies never leaves a server behind. (PR_SET_PDEATHSIG is not
// used: it fires when the spawning *thread* exits, not the process.)
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on; port 0 picks a free port")
	dir := flag.String("dir", "./ferretdb-data", "directory for the SQLite databases")
	parentPID := flag.Int("parent-pid", 0, "exit when this process no longer exists (0: never)")
	flag.Parse()

	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatalf("ferretdb: cannot create %s: %v", *dir, err)
	}

	if pid := *parentPID; pid > 0 {
		wasParent := os.Getppid() == pid
		go func() {
			for {
				// ESRCH: gone. Reparented: our parent died (covers a dead but
				// not yet reaped parent, which kill(pid, 0) still finds).
				if syscall.Kill(pid, 0) == syscall.ESRCH || (wasParent && os.Getppid() != pid) {
					log.Printf("ferretdb: parent process %d is gone, exiting", pid)
					os.Exit(0)
				}
				time.Sleep(500 * time.Millisecond)
			}
		}()
	}

	addr := *listen
	// Resolve port 0 ourselves so that we can report the real address.
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		log.Fatalf("ferretdb: bad -listen %q: %v", addr, err)
	}
	if port == "0" {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			log.Fatalf("ferretdb: cannot pick a free port: %v", err)
		}
		addr = l.Addr().String()
		l.Close()
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
	})
	if err != nil {
		log.Fatalf("ferretdb: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	// Wait until the port accepts connections before announcing it.
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			log.Fatalf("ferretdb: stopped before listening: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Printf("LISTENING mongodb://%s/\n", addr)
	os.Stdout.Sync()

	if err := <-done; err != nil && ctx.Err() == nil {
		log.Fatalf("ferretdb: %v", err)
	}
}
