package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// startOperations serves h, the operator's endpoints (/metrics, /healthz,
// /readyz), on a listener of its own at addr (--metrics-addr), so that
// they can be reached where the API is not (a Prometheus scraper, a
// kubelet) or kept from where the API is. stop closes it.
func startOperations(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          serverLog(log),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("the metrics listener stopped", "err", err)
		}
	}()
	log.Info("serving /metrics, /healthz and /readyz on their own address", "addr", ln.Addr().String())
	return func() {
		srv.Close()
		<-done
	}, nil
}
