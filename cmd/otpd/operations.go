package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// newHTTPServer returns the server of otpd's handler h, the API's or the
// operations' (--metrics-addr): timeouts that protect otpd from slow
// clients, and net/http's own log as records of log.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          serverLog(log),
	}
}

// listenAside serves srv on a listener of its own at addr, beside the
// API's (--pprof-addr, --metrics-addr), and returns the address it listens
// on. stop closes it; what names it in the log if it fails.
func listenAside(addr string, srv *http.Server, log *slog.Logger, what string) (stop func(), bound string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn(what+" stopped", "err", err)
		}
	}()
	return func() {
		srv.Close()
		<-done
	}, ln.Addr().String(), nil
}
