package pinpointapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/otpd/otpd/internal/otp"
	"github.com/otpd/otpd/internal/phone"
)

// state follows one request from the start of its handler (its headers
// read) to its access-log line.
type state struct {
	w         *statusWriter
	r         *http.Request
	id        string
	operation string
	start     time.Time
	accessKey string // the key the request's signature proved
	// claimedKey is the key a refused signature named: the client's
	// claim, not proved.
	claimedKey string
	appID      string
	detail     []slog.Attr // outcome, delivery status: never a code
	err        error       // the cause of an error response, for the log
}

type stateKey struct{}

// begin starts a request's state, gives the request its ID and counts it
// in flight until finish.
func (s *server) begin(w http.ResponseWriter, r *http.Request, operation string) *state {
	id := newRequestID()
	w.Header()["x-amzn-RequestId"] = []string{id} // spelled as AWS spells it
	st := &state{
		w:         &statusWriter{ResponseWriter: w, status: http.StatusOK},
		r:         r,
		id:        id,
		operation: operation,
		start:     time.Now(),
		appID:     r.PathValue("app"),
	}
	if s.InFlight != nil {
		s.InFlight.add(st)
	}
	return st
}

// stateOf returns the request's state; every handler runs under begin.
func stateOf(r *http.Request) *state { return r.Context().Value(stateKey{}).(*state) }

// finish logs the request and counts it in the metrics. It is deferred by
// every handler, so it also turns a panic into a 500 in the AWS format
// instead of a dropped connection.
func (s *server) finish(st *state) {
	if s.InFlight != nil {
		defer s.InFlight.remove(st) // even when the handler's abort panics on
	}
	if p := recover(); p != nil {
		if p == http.ErrAbortHandler {
			panic(p)
		}
		st.err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		if !st.w.wroteHeader {
			s.writeError(st.w, st.r.WithContext(context.WithValue(st.r.Context(), stateKey{}, st)), st.err)
		}
	}
	elapsed := time.Since(st.start)
	s.Metrics.Request(st.operation, st.w.status, elapsed)
	if st.operation == "Healthz" || st.operation == "Readyz" || st.operation == "Metrics" {
		if st.err == nil {
			return
		}
	}
	level := slog.LevelInfo
	switch {
	case st.w.status >= 500:
		level = slog.LevelError
	case st.w.status >= 400:
		level = slog.LevelWarn
	}
	ctx := st.r.Context()
	h := s.Logger.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	// What the request chose (method, path, application, claimed key,
	// invocation ID) goes through loggable: anyone can send it, without
	// credentials.
	attrs := []slog.Attr{
		slog.String("request_id", st.id),
		slog.String("operation", st.operation),
		slog.String("method", loggable(st.r.Method, maxLoggedMethod)),
		slog.String("path", loggable(st.r.URL.Path, maxLoggedPath)),
		slog.Int("status", st.w.status),
		slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000),
	}
	if st.appID != "" {
		attrs = append(attrs, slog.String("app", loggable(st.appID, maxLoggedAppID)))
	}
	if st.accessKey != "" {
		attrs = append(attrs, slog.String("access_key", st.accessKey))
	}
	if st.claimedKey != "" {
		attrs = append(attrs, slog.String("claimed_access_key", loggable(st.claimedKey, maxLoggedKeyID)))
	}
	// The SDK's ID of the call, the same in every retry of it: it ties a
	// retry to the attempt before (a send's retry is answered with that
	// attempt's result).
	if id := st.r.Header.Get("amz-sdk-invocation-id"); id != "" {
		attrs = append(attrs, slog.String("invocation_id", loggable(id, otp.MaxInvocationIDLength)))
	}
	attrs = append(attrs, st.detail...)
	if st.err != nil {
		// An error names the phone number it is about, for the client; the
		// log needs no more than its country.
		attrs = append(attrs, slog.String("err", phone.Mask(st.err.Error())))
	}
	// The record goes to the handler directly: Logger.LogAttrs would also
	// look up the caller's PC (runtime.Callers, 2 % of a verification's
	// CPU), which the access log never shows.
	rec := slog.NewRecord(time.Now(), level, "request", 0)
	rec.AddAttrs(attrs...)
	h.Handle(ctx, rec)
}

// Bounds on what the log shows of values a request chose, each well above
// what otpd's clients send: a method of a few letters, a path of some 60
// bytes, an application ID of 32 characters, an access key ID of 20 (AWS's
// are 16 to 128), an invocation ID of 36 (see otp.MaxInvocationIDLength).
const (
	maxLoggedMethod = 32
	maxLoggedPath   = 256
	maxLoggedAppID  = 64
	maxLoggedKeyID  = 128
)

// loggable returns v, a value a request chose, as a log may show it: with
// every control or format character (Unicode's Cc and Cf: a newline, a
// direction override such as U+202E, a zero-width space) and every byte
// that is not UTF-8 written as a Go escape (\n, \u202e, \xff) instead of
// raw, which the JSON handler would leave as it is; and no longer than max
// bytes, cut at a character and followed by "...(N bytes)", N being v's
// whole length, so that no request makes a log line longer than a few
// hundred bytes.
func loggable(v string, max int) string {
	clean := len(v) <= max
	for i := 0; clean && i < len(v); {
		r, n := utf8.DecodeRuneInString(v[i:])
		clean = !hiddenInLog(r, n)
		i += n
	}
	if clean {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); {
		r, n := utf8.DecodeRuneInString(v[i:])
		piece := v[i : i+n]
		if hiddenInLog(r, n) {
			if n == 1 && r == utf8.RuneError {
				piece = fmt.Sprintf(`\x%02x`, v[i])
			} else {
				q := strconv.QuoteRune(r)
				piece = q[1 : len(q)-1]
			}
		}
		if b.Len()+len(piece) > max {
			fmt.Fprintf(&b, "...(%d bytes)", len(v))
			break
		}
		b.WriteString(piece)
		i += n
	}
	return b.String()
}

// hiddenInLog reports whether the rune r, n bytes long, is a byte that is
// not UTF-8, or a control or format character.
func hiddenInLog(r rune, n int) bool {
	return r == utf8.RuneError && n == 1 || r < utf8.RuneSelf && (r < ' ' || r == 0x7f) ||
		r >= utf8.RuneSelf && unicode.In(r, unicode.Cc, unicode.Cf)
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// newRequestID returns a random ID in the form of AWS request IDs (a UUID).
func newRequestID() string { return uuid.NewString() }

// readBody reads the whole request body, refusing one over the limit or
// one compressed (no Pinpoint operation takes a compressed request).
func (s *server) readBody(r *http.Request) ([]byte, error) {
	for _, line := range r.Header.Values("Content-Encoding") {
		for ce := range strings.SplitSeq(line, ",") {
			if ce = strings.TrimSpace(ce); ce != "" && !strings.EqualFold(ce, "identity") {
				if len(ce) > 32 {
					ce = ce[:32] + "..."
				}
				return nil, errBadRequest("Content-Encoding %q is not supported: send the request body uncompressed.", ce)
			}
		}
	}
	if r.ContentLength > s.MaxBodyBytes {
		return nil, errPayloadTooLarge(s.MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errPayloadTooLarge(s.MaxBodyBytes)
	}
	if err != nil {
		// The client's doing (a body shorter than its Content-Length, a
		// connection closed or too slow): a 400, not a server error that
		// anyone could raise without credentials. The cause, which names
		// the server's address, goes to the log only.
		why := "was cut short"
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			why = "did not arrive in time"
		}
		return nil, fmt.Errorf("read request body: %w: %v", errBadRequest("The request body %s: send it whole, and without pauses.", why), err)
	}
	return body, nil
}
