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
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/otpd/otpd/internal/metrics"
	"github.com/otpd/otpd/internal/otp"
	"github.com/otpd/otpd/internal/sigv4"
	"github.com/otpd/otpd/internal/storage"
)

// Authenticator verifies a request's signature against its complete body and
// returns the caller's access key ID. *sigv4.Verifier is one.
type Authenticator interface {
	Verify(r *http.Request, body []byte) (accessKeyID string, err error)
}

// MessageLister lists the records of messages sent; every storage.Store is
// one.
type MessageLister interface {
	ListMessages(ctx context.Context, q storage.MessageQuery) ([]storage.MessageRecord, error)
}

// OutboxLister lists the development outbox; every storage.Store is one.
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
	// RequestTimeout bounds the work of one request, store and carrier
	// included. Zero means 30 seconds.
	RequestTimeout time.Duration
	// Messages is served at GET /_otpd/messages: every message sent, with
	// its carrier and delivery status, never its text.
	Messages MessageLister
	// Outbox is served at GET /_otpd/outbox; nil when the development outbox
	// is not the carrier.
	Outbox OutboxLister
	// Callbacks are carriers' own endpoints (delivery status callbacks),
	// served at /_otpd/callbacks/<key> without SigV4: each checks its
	// carrier's own signature.
	Callbacks map[string]http.Handler
	// Ready reports whether the server can serve, for /readyz: nil, or
	// why not. /readyz, which anyone may ask, says "the store does not
	// answer, or refuses writes", or the Reason of a *NotReady.
	Ready  func(ctx context.Context) error
	Logger *slog.Logger
	// InFlight, if set, holds the requests being handled.
	InFlight *InFlight
	// MetricsElsewhere leaves /metrics to the operations' handler (see
	// Handlers), on a listener of its own: the API answers it as an
	// unknown path.
	MetricsElsewhere bool
}

// DefaultMaxBodyBytes is the default limit on request bodies.
const DefaultMaxBodyBytes = 1 << 20

type server struct {
	Config
	// notReady is why the last /readyz answered 503 (see probeReason),
	// nil if it answered 200: a probe's failure is logged when its reason
	// changes, not at every probe. The API's and the operations'
	// listeners share it.
	notReady *atomic.Pointer[string]
}

// New returns the HTTP handler that serves the whole API, with /healthz,
// /readyz and, unless cfg.MetricsElsewhere, /metrics.
func New(cfg Config) http.Handler {
	api, _ := Handlers(cfg)
	return api
}

// Handlers returns New's handler, and that of an operator's listener of
// its own: /metrics, /healthz and /readyz, logged and counted as the
// API's are. The two log /readyz's changes once between them; the
// operations' requests are not in cfg.InFlight.
func Handlers(cfg Config) (api, operations http.Handler) {
	s := newServer(cfg)
	ops := &server{Config: s.Config, notReady: s.notReady}
	ops.InFlight = nil
	opsMux := http.NewServeMux()
	ops.routeProbes(opsMux, true)
	return s.apiHandler(), ops.serveMux(opsMux)
}

// apiHandler returns the handler of the whole API.
func (s *server) apiHandler() http.Handler {
	mux := http.NewServeMux()
	s.route(mux, "/v1/apps", methods{
		http.MethodGet:  {name: "GetApps", handle: s.getApps},
		http.MethodPost: {name: "CreateApp", handle: s.createApp},
	})
	s.route(mux, "/v1/apps/{app}", methods{
		http.MethodGet:    {name: "GetApp", handle: s.getApp},
		http.MethodDelete: {name: "DeleteApp", handle: s.deleteApp},
	})
	s.route(mux, "/v1/apps/{app}/channels/sms", methods{
		http.MethodGet: {name: "GetSmsChannel", handle: s.getSMSChannel},
		http.MethodPut: {name: "UpdateSmsChannel", handle: s.updateSMSChannel},
	})
	s.route(mux, "/v1/apps/{app}/otp", methods{
		http.MethodPost: {name: "SendOTPMessage", handle: s.sendOTP},
	})
	s.route(mux, "/v1/apps/{app}/verify-otp", methods{
		http.MethodPost: {name: "VerifyOTPMessage", handle: s.verifyOTP},
	})
	s.route(mux, "/v1/phone/number/validate", methods{http.MethodPost: {name: "PhoneNumberValidate", handle: s.validatePhoneNumber}})
	s.route(mux, "/_otpd/messages", methods{
		http.MethodGet: {name: "ListMessages", handle: s.listMessages},
	})
	s.route(mux, "/_otpd/outbox", methods{
		http.MethodGet: {name: "ListOutbox", handle: s.listOutbox},
	})
	for key, h := range s.Callbacks {
		s.route(mux, "/_otpd/callbacks/"+key, methods{http.MethodPost: {name: "CarrierCallback", handle: public(h.ServeHTTP), public: true}})
	}
	s.routeProbes(mux, !s.MetricsElsewhere)
	return s.serveMux(mux)
}

// newServer returns the server of cfg, with its defaults filled in.
func newServer(cfg Config) *server {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &server{Config: cfg, notReady: new(atomic.Pointer[string])}
}

// routeProbes registers /healthz, /readyz and, with metrics, /metrics.
func (s *server) routeProbes(mux *http.ServeMux, metrics bool) {
	s.route(mux, "/healthz", methods{http.MethodGet: {"Healthz", public(s.healthz), true}})
	s.route(mux, "/readyz", methods{http.MethodGet: {"Readyz", public(s.readyz), true}})
	if metrics {
		s.route(mux, "/metrics", methods{http.MethodGet: {"Metrics", public(s.Metrics.Handler().ServeHTTP), true}})
	}
}

// serveMux returns the handler of mux, which answers any other path as
// unknown, in the AWS error format.
func (s *server) serveMux(mux *http.ServeMux) http.Handler {
	unknown := s.unauthenticated("Unknown", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errUnknownRoute)
	})
	mux.Handle("/", unknown)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// ServeMux would answer a path that is not clean ("//", "..", a
		// trailing "/", an empty application ID) with a redirect; no
		// Pinpoint operation has such a path.
		if p := r.URL.Path; p != path.Clean(p) {
			unknown.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// operation is an API operation. Unless it is public, its request must be
// signed, and its handler gets the body that the signature covered.
type operation struct {
	name   string
	handle func(w http.ResponseWriter, r *http.Request, body []byte)
	public bool
}

// public adapts an endpoint that takes no body and needs no signature.
func public(h http.HandlerFunc) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) { h(w, r) }
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
		st := s.begin(w, r, name)
		defer s.finish(st)
		ctx, cancel := context.WithTimeout(r.Context(), s.RequestTimeout)
		defer cancel()
		r = r.WithContext(context.WithValue(ctx, stateKey{}, st))
		if !ok {
			w.Header().Set("Allow", allow)
			s.writeError(st.w, r, errMethodNotAllowed)
			return
		}
		if op.public {
			op.handle(st.w, r, nil)
			return
		}
		body, err := s.readBody(r)
		if err != nil {
			s.writeError(st.w, r, err)
			return
		}
		key, err := s.Auth.Verify(r, body)
		if err != nil {
			// The key a refused request named goes to the log with it,
			// apart from the keys of requests that proved theirs.
			var refused *sigv4.Error
			if errors.As(err, &refused) {
				st.claimedKey = refused.AccessKeyID
			}
			s.writeError(st.w, r, err)
			return
		}
		st.accessKey = key
		s.Metrics.SignedBy(key)
		op.handle(st.w, r, body)
	}))
}

// unauthenticated wraps an endpoint that needs no signature.
func (s *server) unauthenticated(name string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := s.begin(w, r, name)
		defer s.finish(st)
		h(st.w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
	})
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"Status":"ok"}` + "\n"))
}

// probeReason is a failing probe's error text as the log compares it from
// one probe to the next: with a connection's local port masked, which is
// new at every connection ("read tcp 127.0.0.1:40112->127.0.0.1:5432:
// connection reset by peer"). Every other part, another host or port of
// the store included, is a new reason.
func probeReason(err error) string {
	return localPort.ReplaceAllString(err.Error(), ":#->")
}

// localPort matches the local port of a connection's "local->remote"
// addresses in a net.OpError's text.
var localPort = regexp.MustCompile(`:[0-9]+->`)

// NotReady is an error of Config.Ready whose Reason /readyz may show.
type NotReady struct{ Reason string }

func (e *NotReady) Error() string { return e.Reason }

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if s.Ready != nil {
		if err := s.Ready(ctx); err != nil {
			reason := probeReason(err)
			if last := s.notReady.Swap(&reason); last == nil || *last != reason {
				stateOf(r).err = err // logged; the same reason again is only counted
			}
			shown := "the store does not answer, or refuses writes (the log says which)"
			var notReady *NotReady
			if errors.As(err, &notReady) {
				shown = notReady.Reason
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(struct{ Status, Message string }{"not ready", shown})
			return
		}
		if s.notReady.Swap(nil) != nil {
			s.Logger.Info("ready again: /readyz answers 200")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"Status":"ready"}` + "\n"))
}
