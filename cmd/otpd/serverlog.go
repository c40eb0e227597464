package main

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// serverLog returns the log of otpd's http.Server, which net/http writes
// as lines of text, turned into records of to: a failed TLS handshake as
// "TLS handshake failed" with the client's address and the cause (at debug
// level when the client just closed the connection, as load balancers'
// TCP health checks and port scanners do; a warning otherwise), a panic in
// a handler as an error, every other line as a warning.
func serverLog(to *slog.Logger) *log.Logger {
	return log.New(serverLogWriter{to}, "", 0)
}

type serverLogWriter struct{ log *slog.Logger }

const handshakePrefix = "http: TLS handshake error from "

func (w serverLogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSuffix(string(p), "\n")
	ctx := context.Background()
	switch {
	case strings.HasPrefix(line, handshakePrefix):
		// "http: TLS handshake error from 192.0.2.1:4242: EOF"
		addr, cause, _ := strings.Cut(strings.TrimPrefix(line, handshakePrefix), ": ")
		level := slog.LevelWarn
		if cause == "EOF" || strings.HasSuffix(cause, "connection reset by peer") {
			level = slog.LevelDebug
		}
		w.log.Log(ctx, level, "TLS handshake failed", "remote_addr", addr, "err", cause)
	case strings.HasPrefix(line, "http: panic serving "):
		w.log.Error("a request handler panicked", "err", strings.TrimPrefix(line, "http: "))
	default:
		w.log.Warn(line)
	}
	return len(p), nil
}
