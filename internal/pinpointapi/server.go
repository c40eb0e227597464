// Package pinpointapi serves otpd over the Amazon Pinpoint REST-JSON wire
// protocol (API version 2016-12-01, signing name mobiletargeting), so that
// the AWS SDKs, boto3 and the aws CLI work against otpd unchanged.
//
// Every API request is authenticated with AWS Signature Version 4 before it
// reaches a handler. Bodies are the bare payload objects, never wrapped.
// Errors of every kind are translated once, in errors.go, into the AWS error
// format. /healthz, /readyz and /metrics need no authentication.
package pinpointapi

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/otpd/otpd/internal/metrics"
	"github.com/otpd/otpd/internal/otp"
	"github.com/otpd/otpd/internal/storage"
)

// Authenticator verifies a request's signature against its complete body and
// returns the caller's access key ID. *sigv4.Verifier is one.
type Authenticator interface {
	Verify(r *http.Request, body []byte) (accessKeyID string, err error)
}

// OutboxLister lists the development outbox. *storage.Store values are ones.
type OutboxLister interface {
	ListOutbox(ctx context.Context, q storage.OutboxQuery) ([]storage.OutboxMessage, error)
}

// Config configures the API handler. Service, Auth and Metrics are required.
type Config struct {
	Service *otp.Service
	Auth    Authenticator
	Metrics *metrics.Metrics
	// Region and AccountID appear in application ARNs.
	Region    string
	AccountID string
	// MaxBodyBytes bounds request bodies; larger ones get 413. Zero means 1 MiB.
	MaxBodyBytes int64
	// Outbox is served at GET /_otpd/outbox; nil when the development outbox
	// is not the carrier.
	Outbox OutboxLister
	// Ready reports whether the store answers, for /readyz.
	Ready  func(ctx context.Context) error
	Logger *slog.Logger
}

// DefaultMaxBodyBytes is the default limit on request bodies.
const DefaultMaxBodyBytes = 1 << 20

type server struct {
	Config
}

// New returns the HTTP handler that serves the whole API.
func New(cfg Config) http.Handler {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &server{Config: cfg}
	mux := http.NewServeMux()
	s.route(mux, "/v1/apps", methods{
		http.MethodGet:  {"GetApps", s.getApps},
		http.MethodPost: {"CreateApp", s.createApp},
	})
	s.route(mux, "/v1/apps/{app}", methods{
		http.MethodGet:    {"GetApp", s.getApp},
		http.MethodDelete: {"DeleteApp", s.deleteApp},
	})
	s.route(mux, "/v1/apps/{app}/channels/sms", methods{
		http.MethodGet: {"GetSmsChannel", s.getSMSChannel},
		http.MethodPut: {"UpdateSmsChannel", s.updateSMSChannel},
	})
	s.route(mux, "/v1/apps/{app}/otp", methods{
		http.MethodPost: {"SendOTPMessage", s.sendOTP},
	})
	s.route(mux, "/v1/apps/{app}/verify-otp", methods{
		http.MethodPost: {"VerifyOTPMessage", s.verifyOTP},
	})
	s.route(mux, "/_otpd/outbox", methods{
		http.MethodGet: {"ListOutbox", s.listOutbox},
	})
	mux.Handle("GET /healthz", s.unauthenticated("Healthz", s.healthz))
	mux.Handle("GET /readyz", s.unauthenticated("Readyz", s.readyz))
	mux.Handle("GET /metrics", s.unauthenticated("Metrics", s.Metrics.Handler().ServeHTTP))
	mux.Handle("/", s.unauthenticated("Unknown", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errUnknownRoute)
	}))
	return mux
}

// operation is an authenticated API operation. Its handler gets the body
// that the signature covered.
type operation struct {
	name   string
	handle func(w http.ResponseWriter, r *http.Request, body []byte)
}

// methods maps HTTP methods to the operations on one path.
type methods map[string]operation

// route registers the operations of one path, answering other methods with
// 405 in the AWS error format.
func (s *server) route(mux *http.ServeMux, path string, ops methods) {
	allow := strings.Join(slices.Sorted(maps.Keys(ops)), ", ")
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, ok := ops[r.Method]
		name := op.name
		if !ok {
			name = "MethodNotAllowed"
		}
		st := begin(w, r, name)
		defer s.finish(st)
		r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		if !ok {
			w.Header().Set("Allow", allow)
			s.writeError(st.w, r, errMethodNotAllowed)
			return
		}
		body, err := s.readBody(r)
		if err != nil {
			s.writeError(st.w, r, err)
			return
		}
		key, err := s.Auth.Verify(r, body)
		if err != nil {
			s.writeError(st.w, r, err)
			return
		}
		st.accessKey = key
		op.handle(st.w, r, body)
	}))
}

// unauthenticated wraps an endpoint that needs no signature.
func (s *server) unauthenticated(name string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := begin(w, r, name)
		defer s.finish(st)
		h(st.w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
	})
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"Status":"ok"}` + "\n"))
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if s.Ready != nil {
		if err := s.Ready(ctx); err != nil {
			stateOf(r).err = err
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"Status":"not ready","Message":"the store does not answer"}` + "\n"))
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"Status":"ready"}` + "\n"))
}
