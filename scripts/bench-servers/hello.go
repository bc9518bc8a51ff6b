// hello.go - the benchmark's Go hello-world HTTP server (net/http).
//
//	hello-go --port P
//
// What a Go server looks like to cluster-run: built with CGO_ENABLED=0 it
// is static and makes its own system calls (the runtime's), so the shim
// never sees its bind() or listen() and it runs in the seccomp mode.
// Every answer names who served it, so that a load generator can count
// requests per worker:
//
//	X-Worker: <$CLUSTER_WORKER_ID, or the pid when unset>
//
//	<the same> <pid>
//
// Keep-alive as net/http does it; a request with "Connection: close" gets
// its connection closed after the answer.  SIGTERM: Shutdown (the listener
// closed, requests in progress finished), then exit 0.  GOMAXPROCS is the
// runtime's default (every CPU), as a Go server is usually run.
//
// Build: CGO_ENABLED=0 go build -o hello-go hello.go
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1")
	flag.Parse()
	if *port <= 0 || *port > 65535 {
		fmt.Fprintln(os.Stderr, "hello-go: --port P (1-65535) is required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(*port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "hello-go:", err)
		os.Exit(1)
	}
	worker := os.Getenv("CLUSTER_WORKER_ID")
	if worker == "" {
		worker = strconv.Itoa(os.Getpid())
	}
	body := []byte(fmt.Sprintf("%s %d\n", worker, os.Getpid()))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("X-Worker", worker)
		w.Write(body)
	})}
	done := make(chan struct{})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() {
		<-stop
		srv.Shutdown(context.Background())
		close(done)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "hello-go:", err)
		os.Exit(1)
	}
	<-done
}
