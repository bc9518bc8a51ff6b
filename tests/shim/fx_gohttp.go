// fx_gohttp PORT - a Go net/http server, built with CGO_ENABLED=0 (static,
// the runtime's own system calls: nothing the shim can reach).  GET /
// answers "<id> <pid>\n" ($CLUSTER_WORKER_ID, its pid), one connection per
// request.  SIGTERM: a graceful stop as Go servers make it (Shutdown: the
// listener closed, the requests in progress finished), then exit 0.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fx_gohttp PORT")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fx_gohttp:", err)
		os.Exit(1)
	}
	answer := fmt.Sprintf("%s %d\n", os.Getenv("CLUSTER_WORKER_ID"), os.Getpid())
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		fmt.Fprint(w, answer)
	})
	srv := &http.Server{Handler: mux}
	done := make(chan struct{})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() {
		<-stop
		srv.Shutdown(context.Background())
		close(done)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "fx_gohttp:", err)
		os.Exit(1)
	}
	<-done
}
