package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/otpd/otpd/internal/metrics"
	"github.com/otpd/otpd/internal/otp"
	"github.com/otpd/otpd/internal/pinpointapi"
	"github.com/otpd/otpd/internal/sigv4"
	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/sms/outbox"
	"github.com/otpd/otpd/internal/storage"
	"github.com/otpd/otpd/internal/storage/postgres"
	"github.com/otpd/otpd/internal/storage/sqlite"
)

// server is a configured otpd, ready to serve.
type server struct {
	cfg     config
	log     *slog.Logger
	now     func() time.Time
	store   storage.Store
	metrics *metrics.Metrics
	handler http.Handler
	// operations serves /metrics, /healthz and /readyz on --metrics-addr.
	operations http.Handler
	accessKeys accessKeys
	cert       *servingCert // nil without --tls-cert
	carrier    string       // what sends: "outbox" or the router's carriers
	carriers   *carriers    // nil with the development outbox
	keys       *keyWatch
	inFlight   *pinpointapi.InFlight
}

// newServer opens the store and wires otpd together. now is the clock of
// the OTP domain (codes, expiry, budgets); signatures always use real time.
func newServer(ctx context.Context, cfg config, log *slog.Logger, now func() time.Time) (*server, error) {
	if cfg.Store != "" {
		// Every instance on a shared store must hash codes with the same
		// key and accept the same signatures: neither may be generated
		// per instance.
		if err := requireSharedSecrets(); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	accessKeys, err := loadAccessKeys(cfg.DataDir, log)
	if err != nil {
		return nil, err
	}
	var cert *servingCert
	if cfg.TLSCert != "" {
		if cert, err = openServingCert(cfg.TLSCert, cfg.TLSKey, log); err != nil {
			return nil, fmt.Errorf("%s, %s: %w", cfg.settingName("tls-cert"), cfg.settingName("tls-key"), err)
		}
		log.Info("TLS certificate loaded", certAttrs(cert.Value())...)
		warnCertValidity(log, cert.Value(), time.Now())
	}
	if accessKeys.generated {
		log.Info("generated a new access key pair", "file", accessKeys.fileName())
	}
	st, created, err := openStore(ctx, cfg, true)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created a new embedded database", "file", filepath.Join(cfg.DataDir, databaseFileName))
	}
	// The key is loaded (or made) once the store is open, and checked
	// against the store's at once: a key made for a store that has another
	// is removed again.
	macKey, macSource, macGenerated, err := loadHMACKey(cfg.DataDir)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("HMAC key: %w", err)
	}
	keys := &keyWatch{st: st, check: otp.KeyCheck(macKey), log: log}
	found, err := checkStoreKey(ctx, st, keys.check, macSource, macGenerated, cfg.adoptHMACKey)
	if err != nil {
		st.Close()
		return nil, err
	}
	check := keyCheckPrefix(keys.check)
	if macGenerated {
		log.Info("generated a new code hashing key: losing or changing it invalidates every live code", "file", macSource, "check", check)
	} else {
		log.Info("code hashing key loaded", "source", macSource, "check", check)
	}
	logStoreKey(ctx, log, st, found, check)
	for _, path := range []string{accessKeys.fileName(), macSource} {
		if path != "" && looseSecretFile(path) {
			log.Warn("a secret file can be read by other users; restrict it with chmod 600", "file", path)
		}
	}
	if dc, ok := st.(storage.DurabilityChecker); ok {
		switch risk, err := dc.DurabilityRisk(ctx); {
		case err != nil:
			log.Info("could not read the store's durability settings", "err", err)
		case risk != "":
			log.Warn("the store's server can lose writes it acknowledged (README: What each store can lose on a crash)", "risk", risk)
		}
	}
	if cfg.Store == "" {
		spareProcForFlushes(log)
	}
	m := metrics.New()
	if embedded, ok := st.(*sqlite.Store); ok {
		m.WatchWriter(sqlite.FlushBounds[:], func() metrics.WriterStats {
			s := embedded.Stats()
			return metrics.WriterStats{Writes: s.Writes, Commits: s.Commits, FlushesWithin: s.FlushesWithin[:], FlushTime: s.FlushTime,
				Checkpoints: s.Checkpoints, CheckpointFailures: s.CheckpointFailures}
		})
	}
	var keysFileHealthy func() bool
	if accessKeys.file != nil {
		keysFileHealthy = accessKeys.file.Healthy
	}
	m.WatchAccessKeys(func() int { return len(accessKeys.ring.Pairs()) }, keysFileHealthy)
	if cert != nil {
		m.WatchTLSCertificate(func() time.Time { return cert.Value().Leaf.NotAfter }, cert.Healthy)
	}
	if shared, ok := st.(*postgres.Store); ok {
		m.WatchPool(func() metrics.PoolStats { return metrics.PoolStats(shared.PoolStats()) })
	}
	delivery := &reports{log: log}
	var (
		carrier  sms.Carrier              = outbox.New(st, now)
		listing  pinpointapi.OutboxLister = st
		cs       *carriers
		callback map[string]http.Handler
	)
	if cfg.CarrierConfig != "" {
		if cs, err = loadCarriers(ctx, cfg.CarrierConfig, delivery, m, log); err != nil {
			st.Close()
			return nil, err
		}
		// A carrier that could not send now (no AWS credentials) does not
		// stop otpd: its route fails over from it, as from one that is
		// down. So the check, up to carrierCheckTimeout for an instance
		// role, does not hold up the start either.
		go func() {
			for _, err := range cs.check(ctx) {
				log.Warn("a carrier cannot send: sends through it fail over to the next carrier of their route", "err", err)
			}
		}()
		carrier, listing, callback = cs.router, nil, cs.callbacks
	}
	svc, err := otp.NewService(otp.Config{
		Store:         st,
		Carrier:       carrier,
		MACKey:        macKey,
		KeyReplaced:   keys.replaced,
		FailureBudget: storage.FailureBudget{Limit: cfg.FailureLimit, Window: cfg.FailureWindow},
		SendTimeout:   cfg.SendTimeout,
		AppCacheTTL:   appCacheTTL(cfg.AppCacheTTL),
		Observer:      m,
		Logger:        log,
		Now:           now,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	delivery.service.Store(svc)
	inFlight := &pinpointapi.InFlight{}
	api := pinpointapi.Config{
		Messages:         st,
		Callbacks:        callback,
		Service:          svc,
		Auth:             &sigv4.Verifier{Region: cfg.Region, Service: "mobiletargeting", Keys: accessKeys.ring},
		Metrics:          m,
		Region:           cfg.Region,
		AccountID:        cfg.AccountID,
		MaxBodyBytes:     cfg.MaxBodyBytes,
		Outbox:           listing,
		Ready:            keys.ready,
		Logger:           log,
		InFlight:         inFlight,
		MetricsElsewhere: cfg.MetricsAddr != "",
	}
	handler, operations := pinpointapi.Handlers(api)
	return &server{cfg: cfg, log: log, now: now, store: st, metrics: m,
		handler: handler, operations: operations, accessKeys: accessKeys, cert: cert,
		carrier: carrier.Name(), carriers: cs, keys: keys, inFlight: inFlight}, nil
}

// serve answers requests on ln until ctx is done, then stops accepting,
// lets requests in flight finish (up to the shutdown timeout) and closes the
// store.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	srv := newHTTPServer(s.handler, s.log)
	// The side listeners first: if one cannot start, nothing else has.
	stopProfiles, stopOperations := func() {}, func() {}
	if s.cfg.PprofAddr != "" {
		stop, err := startProfiles(s.cfg.PprofAddr, s.log)
		if err != nil {
			s.close()
			return fmt.Errorf("--pprof-addr: %w", err)
		}
		stopProfiles = stop
	}
	defer stopProfiles()
	if s.cfg.MetricsAddr != "" {
		stop, bound, err := listenAside(s.cfg.MetricsAddr, newHTTPServer(s.operations, s.log), s.log, "the metrics listener")
		if err != nil {
			s.close()
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		s.log.Info("serving /metrics, /healthz and /readyz on their own address", "addr", bound)
		stopOperations = stop
	}
	var wg sync.WaitGroup
	purgeCtx, stopPurge := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() { s.purgeLoop(purgeCtx) })
	wg.Go(func() { s.keys.run(purgeCtx, keyRecheck) })
	if f := s.accessKeys.file; f != nil {
		wg.Go(func() { f.Watch(purgeCtx, filesReread) })
	}
	if s.cert != nil {
		srv.TLSConfig = tlsConfig(s.cert)
		wg.Go(func() { s.cert.Watch(purgeCtx, filesReread) })
	}

	errc := make(chan error, 1)
	go func() {
		if s.cert != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		s.log.Info("shutting down: finishing requests in flight", "timeout", s.cfg.ShutdownTimeout)
		// The operations' listener stops with the API's: a load balancer
		// that probes its /readyz must stop sending now, as one that
		// probes the API's does.
		stopOperations()
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
		<-errc
		if errors.Is(err, context.DeadlineExceeded) {
			// The store closes under the requests still running: a send
			// among them may have texted a code that it cannot store.
			s.logAbandoned(s.inFlight.Requests())
			err = nil
		}
	}
	stopOperations() // again after a signal: closing a closed listener does nothing
	stopPurge()
	wg.Wait()
	if cerr := s.close(); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// close closes the carriers, then the store.
func (s *server) close() error {
	if s.carriers != nil {
		s.carriers.close()
	}
	return s.store.Close()
}

// abandonedShown is how many abandoned requests the log names one by one.
const abandonedShown = 100

// logAbandoned logs the requests that the shutdown timeout cut short: how
// many, and each (up to abandonedShown) by its request ID, which the
// client's SDK shows too.
func (s *server) logAbandoned(reqs []pinpointapi.Request) {
	logAbandoned(s.log, reqs, "requests still in flight after the shutdown timeout are abandoned; a message they sent may not verify",
		"timeout", s.cfg.ShutdownTimeout)
}

// logAbandoned logs msg with attrs and how many requests reqs holds, then
// each of them (up to abandonedShown) by its request ID.
func logAbandoned(log *slog.Logger, reqs []pinpointapi.Request, msg string, attrs ...any) {
	log.Warn(msg, append(attrs, "requests", len(reqs))...)
	for i, r := range reqs {
		if i == abandonedShown {
			log.Warn("more abandoned requests are not named", "requests", len(reqs)-abandonedShown)
			break
		}
		log.Warn("abandoned request", "request_id", r.ID, "operation", r.Operation, "app", r.AppID,
			"running_for", time.Since(r.Started).Round(time.Millisecond))
	}
}

// exitOnSignal ends otpd as sig's default action would, so that its exit
// status still says which signal ended it (143 in a shell for SIGTERM).
func exitOnSignal(sig os.Signal) {
	signal.Reset(sig)
	if p, err := os.FindProcess(os.Getpid()); err == nil && p.Signal(sig) == nil {
		select {} // the signal ends the process
	}
	os.Exit(1)
}

// purgeBatch is how many records one purge step deletes at most, so that no
// request waits long behind it: expired codes lie all over their table, so
// each one deleted is a page changed.
const purgeBatch = 250

// purgeShare bounds the store's time that a backlog of expired records may
// take: after each batch, the purge pauses for (1/purgeShare - 1) times what
// the batch took, so that requests keep the rest.
const purgeShare = 0.2

// purgeLoop deletes expired codes and old records every PurgeInterval, in
// bounded batches with pauses between them.
func (s *server) purgeLoop(ctx context.Context) {
	r := storage.Retention{
		BatchSize: purgeBatch,
		// Failures outlive the window by the clock skew allowed between
		// instances: one whose clock runs ahead would otherwise delete
		// failures that instances behind it still count.
		FailureWindow:     s.cfg.FailureWindow + storage.ClockSkew,
		OutboxMaxAge:      s.cfg.OutboxMaxAge,
		OutboxMaxMessages: s.cfg.OutboxMaxMessages,
		MessageMaxAge:     s.cfg.MessageMaxAge,
	}
	t := time.NewTicker(s.cfg.PurgeInterval)
	defer t.Stop()
	for {
		for {
			start := time.Now()
			n, err := s.store.Purge(ctx, s.now(), r)
			if ctx.Err() != nil {
				return // shutting down: a call cut short is no failure, nor a time to count
			}
			s.metrics.Purged(n, time.Since(start), err != nil)
			if err != nil {
				s.log.Warn("purge failed; will try again", "err", err)
				break
			}
			if n < purgeBatch {
				break
			}
			pause := time.Duration(float64(time.Since(start)) * (1/purgeShare - 1))
			select {
			case <-ctx.Done():
				return
			case <-time.After(max(pause, 10*time.Millisecond)):
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

const serveHelp = `otpd serve [flags]

Serves the Pinpoint OTP API.

Its secrets come from the environment, never from flags (README: Keys): the access
key pairs clients sign with from OTPD_ACCESS_KEY_ID and OTPD_SECRET_ACCESS_KEY, or
from the file OTPD_ACCESS_KEYS_FILE names (read again while otpd runs); the code
hashing key from OTPD_HMAC_KEY or the file OTPD_HMAC_KEY_FILE names. Without them,
otpd generates both into --data-dir on first start (a shared --store needs them).`

// runServe is `otpd serve`.
func runServe(args []string) error {
	var cfg config
	fs := newFlagSet("serve", serveHelp)
	serveFlags(fs, &cfg)
	check := fs.Bool("check-config", false, "check the flags, the environment and --config's carriers (connecting to those that keep a connection), then exit; no data is touched")
	// Under JSON logs every line otpd writes is a record, the error that
	// stops it too, even a flag that does not parse (--log-format set
	// before it, or OTPD_LOG_FORMAT): then the usage is not printed.
	usage := fs.Usage
	fs.Usage = func() {
		if cfg.LogFormat != "json" || fs.Output() != os.Stderr { // standard output: help was asked for
			usage()
		}
	}
	err := parseFlags(fs, args)
	if err == nil {
		err = serveUntilStopped(cfg, fs, *check)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) && cfg.LogFormat == "json" {
		cfg.logger().Error("otpd stopped on an error", "err", err.Error())
		return logged{err}
	}
	return err
}

// logged is an error already written to the log: main prints it no more.
type logged struct{ error }

func (e logged) Unwrap() error { return e.error }

// serveUntilStopped is otpd serve once its flags are parsed: it checks cfg,
// then checks the carriers (check) or serves until a signal stops it.
func serveUntilStopped(cfg config, fs *flag.FlagSet, check bool) error {
	invalid := cfg.validate()
	if check {
		// Every problem at once: the settings' and the carriers'.
		return checkConfig(cfg, cfg.logger(), invalid)
	}
	if invalid != nil {
		return fmt.Errorf("invalid configuration:\n%w", invalid)
	}
	log := cfg.logger()
	if cfg.Store != "" && (isFlagSet(fs, "data-dir") || os.Getenv("OTPD_DATA_DIR") != "") {
		// The keys of a shared store come from the environment, and its
		// data from the store: nothing would be read there.
		log.Warn("--data-dir (OTPD_DATA_DIR) is not used with a shared store", "data_dir", cfg.DataDir)
	}
	// SIGHUP too stops gracefully (its default would end otpd at once):
	// otpd reloads nothing, so it means what a closed terminal means. Not
	// under nohup, which ignores it: asking for it would undo that.
	signals := []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		signals = append(signals, syscall.SIGHUP)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, signals...)
	defer signal.Stop(sigs)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var running atomic.Pointer[server]
	done := make(chan struct{})
	defer close(done)
	go func() {
		// The first signal begins the graceful shutdown; a second one ends
		// otpd at once instead of waiting for the requests in flight,
		// saying which it abandons, as the shutdown timeout does.
		select {
		case <-sigs:
		case <-done:
			return
		}
		stop()
		select {
		case sig := <-sigs:
			var reqs []pinpointapi.Request
			if s := running.Load(); s != nil {
				reqs = s.inFlight.Requests()
			}
			logAbandoned(log, reqs, "a second signal ends otpd at once: requests still in flight are abandoned; a message they sent may not verify",
				"signal", sig.String())
			exitOnSignal(sig)
		case <-done:
		}
	}()
	s, err := newServer(ctx, cfg, log, time.Now)
	if err != nil {
		return err
	}
	running.Store(s)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		s.close()
		return err
	}
	s.announce(ln.Addr().String())
	if err := s.serve(ctx, ln); err != nil {
		return err
	}
	log.Info("otpd stopped")
	return nil
}

// appCacheTTL maps --app-cache-ttl, where 0 means no cache, to
// otp.Config.AppCacheTTL, where 0 means the default.
func appCacheTTL(flag time.Duration) time.Duration {
	if flag == 0 {
		return -1
	}
	return flag
}

// isFlagSet reports whether the command line set the flag name.
func isFlagSet(fs *flag.FlagSet, name string) (set bool) {
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// checkConfig is otpd serve --check-config: what otpd serve would refuse at
// start-up before it touches any data, reported together with invalid,
// validate's problems. It reads the keys that otpd serve would read (a key
// it would generate on first start is no problem) and builds the carriers
// that --config describes, connecting to those that keep a connection, and
// closes them again; it opens no store and makes no key. A link that does
// not come up (logged with its reason) fails the check: otpd serve would
// start, failing over from that carrier, but a check that connects is
// asked whether it can. So does a TLS certificate that has expired or is
// not valid yet, which otpd serve serves, warning.
func checkConfig(cfg config, log *slog.Logger, invalid error) error {
	var errs []error
	if invalid != nil {
		errs = append(errs, invalid)
	}
	if err := checkHMACKeyFile(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Store != "" {
		if err := requireSharedSecrets(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, checkKeyFiles(cfg.DataDir, cfg.Store != "")...)
	if cfg.TLSCert != "" && cfg.TLSKey != "" {
		// otpd serve would start, warning; a check is asked whether
		// clients can connect.
		if cert, err := openServingCert(cfg.TLSCert, cfg.TLSKey, nil); err == nil {
			if problem := certNotValid(cert.Value(), time.Now()); problem != "" {
				errs = append(errs, fmt.Errorf("%s: %s", cfg.settingName("tls-cert"), problem))
			}
		}
	}
	if cfg.CarrierConfig != "" {
		if err := checkCarriers(cfg, log); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n%w", errors.Join(errs...))
	}
	fmt.Println("otpd: the configuration is valid")
	return nil
}

// checkCarriers builds the carriers of --config for checkConfig.
func checkCarriers(cfg config, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	links := &linkStates{carrierObserver: metrics.New(), up: map[string]bool{}}
	cs, err := loadCarriers(ctx, cfg.CarrierConfig, &reports{log: log}, links, log)
	if err != nil {
		return err
	}
	errs := cs.check(ctx)
	cs.close()
	if down := links.down(); len(down) > 0 {
		errs = append(errs, fmt.Errorf("the link of %s did not come up (the log says why): otpd serve would start and fail over from it until it binds",
			strings.Join(down, ", ")))
	}
	if len(errs) > 0 {
		return fmt.Errorf("--config %s is valid, but:\n%w", cfg.CarrierConfig, errors.Join(errs...))
	}
	return nil
}

// linkStates is a carrierObserver that remembers the first state each
// connection-keeping carrier reported for its link (at its first bind).
type linkStates struct {
	carrierObserver
	mu sync.Mutex
	up map[string]bool
}

func (l *linkStates) LinkState(carrier string, up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, told := l.up[carrier]; !told {
		l.up[carrier] = up
	}
}

// down returns the carriers whose first bind failed, sorted.
func (l *linkStates) down() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var names []string
	for name, up := range l.up {
		if !up {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
