package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/otpd/otpd/internal/phone"
	"github.com/otpd/otpd/internal/pinpointapi"
)

// config is everything `otpd serve` can be told. Each setting has a flag
// and an OTPD_* environment variable; the flag wins.
type config struct {
	Addr              string
	DataDir           string
	Store             string
	CarrierConfig     string
	SendTimeout       time.Duration
	AppCacheTTL       time.Duration
	Region            string
	AccountID         string
	TLSCert           string
	TLSKey            string
	MaxBodyBytes      int64
	FailureLimit      int
	FailureWindow     time.Duration
	OutboxMaxMessages int
	OutboxMaxAge      time.Duration
	MessageMaxAge     time.Duration
	PurgeInterval     time.Duration
	ShutdownTimeout   time.Duration
	PprofAddr         string
	MetricsAddr       string
	LogFormat         string
	LogLevel          string

	// envErrs holds malformed OTPD_* values, reported by validate unless
	// their flag was given, which wins over them.
	envErrs []envError
	// flags is the flag set the settings were registered on, to tell
	// which were given on the command line.
	flags *flag.FlagSet
	// adoptHMACKey makes the store take this server's code hashing key
	// (checkStoreKey): set by otpd bench --start, which works on a store
	// of its own, never by a flag.
	adoptHMACKey bool
}

// storeFlags registers the settings every subcommand needs to reach the store.
func storeFlags(fs *flag.FlagSet, c *config) {
	c.flags = fs
	fs.StringVar(&c.DataDir, "data-dir", env("OTPD_DATA_DIR", "./otpd-data"),
		"directory of the embedded database and of generated keys (OTPD_DATA_DIR)")
	c.Store = env("OTPD_STORE", "")
	fs.Var(storeFlag{&c.Store}, "store",
		"the `URL` of a shared store instead of the embedded database: postgres://..., redis://host:port/db or\n"+
			"redis-cluster://host:port,host:port,... (OTPD_STORE)")
}

// storeFlag is --store's value, shown redacted wherever the flag package
// shows it (the default that OTPD_STORE gives, in the usage), since it may
// hold a password.
type storeFlag struct{ url *string }

func (f storeFlag) String() string {
	if f.url == nil || *f.url == "" {
		return ""
	}
	return redactStoreURL(*f.url)
}

func (f storeFlag) Set(s string) error {
	*f.url = s
	return nil
}

// serveFlags registers the settings of `otpd serve`.
func serveFlags(fs *flag.FlagSet, c *config) {
	storeFlags(fs, c)
	fs.StringVar(&c.CarrierConfig, "config", env("OTPD_CONFIG", ""),
		"YAML file of SMS carriers and routes; without it messages go to the development outbox (OTPD_CONFIG)")
	fs.DurationVar(&c.SendTimeout, "send-timeout", c.envDuration("OTPD_SEND_TIMEOUT", 10*time.Second),
		"how long one SendOTPMessage may spend on carriers, failover included (OTPD_SEND_TIMEOUT)")
	fs.DurationVar(&c.AppCacheTTL, "app-cache-ttl", c.envDuration("OTPD_APP_CACHE_TTL", time.Second),
		"how long sends and verifications may use an application as read from the store; another instance's change to it applies within this (OTPD_APP_CACHE_TTL)")
	fs.StringVar(&c.Addr, "addr", env("OTPD_ADDR", "127.0.0.1:8080"), "address to listen on (OTPD_ADDR)")
	fs.StringVar(&c.Region, "region", env("OTPD_REGION", "us-east-1"),
		"the AWS region clients sign for and ARNs name; the only one accepted (OTPD_REGION)")
	fs.StringVar(&c.AccountID, "account-id", env("OTPD_ACCOUNT_ID", "000000000000"),
		"the 12-digit account ID in application ARNs (OTPD_ACCOUNT_ID)")
	fs.StringVar(&c.TLSCert, "tls-cert", env("OTPD_TLS_CERT", ""), "PEM certificate file: serve HTTPS (OTPD_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", env("OTPD_TLS_KEY", ""), "PEM private key file for --tls-cert (OTPD_TLS_KEY)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.envInt("OTPD_MAX_BODY_BYTES", pinpointapi.DefaultMaxBodyBytes),
		"largest request body accepted; larger ones get 413 (OTPD_MAX_BODY_BYTES)")
	fs.IntVar(&c.FailureLimit, "failure-limit", int(c.envInt("OTPD_FAILURE_LIMIT", 10)),
		"wrong codes tolerated per application and phone number within --failure-window, across codes (OTPD_FAILURE_LIMIT)")
	fs.DurationVar(&c.FailureWindow, "failure-window", c.envDuration("OTPD_FAILURE_WINDOW", time.Hour),
		"rolling window of --failure-limit (OTPD_FAILURE_WINDOW)")
	fs.IntVar(&c.OutboxMaxMessages, "outbox-max-messages", int(c.envInt("OTPD_OUTBOX_MAX_MESSAGES", 10000)),
		"the development outbox keeps at most this many newest messages (OTPD_OUTBOX_MAX_MESSAGES)")
	fs.DurationVar(&c.OutboxMaxAge, "outbox-max-age", c.envDuration("OTPD_OUTBOX_MAX_AGE", 24*time.Hour),
		"the development outbox keeps messages at most this long (OTPD_OUTBOX_MAX_AGE)")
	fs.DurationVar(&c.MessageMaxAge, "message-max-age", c.envDuration("OTPD_MESSAGE_MAX_AGE", 30*24*time.Hour),
		"how long the records of sent messages (carrier, status; never the text) are kept (OTPD_MESSAGE_MAX_AGE)")
	fs.DurationVar(&c.PurgeInterval, "purge-interval", c.envDuration("OTPD_PURGE_INTERVAL", time.Minute),
		"how often expired codes and old records are purged (OTPD_PURGE_INTERVAL)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", env("OTPD_PPROF_ADDR", ""),
		"serve Go's profiles (net/http/pprof) on this separate address, e.g. 127.0.0.1:6060; off when empty (OTPD_PPROF_ADDR)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", env("OTPD_METRICS_ADDR", ""),
		"serve /metrics (and /healthz, /readyz) on this separate address, e.g. 127.0.0.1:9090, instead of the API's; the API's when empty (OTPD_METRICS_ADDR)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.envDuration("OTPD_SHUTDOWN_TIMEOUT", 30*time.Second),
		"how long SIGTERM waits for requests in flight (OTPD_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.LogFormat, "log-format", env("OTPD_LOG_FORMAT", "text"), "text or json (OTPD_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", env("OTPD_LOG_LEVEL", "info"), "debug, info, warn or error (OTPD_LOG_LEVEL)")
}

// validate reports every problem at once, each naming the setting as it was
// given: the flag, or its environment variable when the value came from
// there.
func (c *config) validate() error {
	var errs []error
	for _, e := range c.envErrs {
		if !c.flagGiven(flagOfEnv(e.name)) {
			errs = append(errs, e.err)
		}
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("%s: want host:port: %v", c.setting("addr", strconv.Quote(c.Addr)), err))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if err := checkStoreURL(c.Store); err != nil {
		errs = append(errs, err)
	}
	if err := checkHMACKeyEnv(); err != nil {
		errs = append(errs, err)
	}
	if err := checkAccessKeyEnv(); err != nil {
		errs = append(errs, err)
	}
	if !isRegion(c.Region) {
		errs = append(errs, fmt.Errorf("%s: want an AWS region name such as us-east-1", c.setting("region", strconv.Quote(c.Region))))
	}
	if len(c.AccountID) != 12 || !phone.IsDigits(c.AccountID) {
		errs = append(errs, fmt.Errorf("%s: want 12 digits", c.setting("account-id", strconv.Quote(c.AccountID))))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, fmt.Errorf("%s and %s go together: set both or neither", c.settingName("tls-cert"), c.settingName("tls-key")))
	} else if c.TLSCert != "" {
		if _, err := openServingCert(c.TLSCert, c.TLSKey, nil); err != nil {
			// The error names the files.
			errs = append(errs, fmt.Errorf("%s, %s: %v", c.settingName("tls-cert"), c.settingName("tls-key"), err))
		}
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("%s: want at least 1024", c.setting("max-body-bytes", c.MaxBodyBytes)))
	}
	if c.FailureLimit < 1 {
		errs = append(errs, fmt.Errorf("%s: want at least 1", c.setting("failure-limit", c.FailureLimit)))
	}
	if c.FailureWindow < time.Minute {
		errs = append(errs, fmt.Errorf("%s: want at least 1m", c.setting("failure-window", c.FailureWindow)))
	}
	if c.OutboxMaxMessages < 1 {
		errs = append(errs, fmt.Errorf("%s: want at least 1", c.setting("outbox-max-messages", c.OutboxMaxMessages)))
	}
	if c.OutboxMaxAge < time.Minute {
		errs = append(errs, fmt.Errorf("%s: want at least 1m", c.setting("outbox-max-age", c.OutboxMaxAge)))
	}
	if c.MessageMaxAge < time.Hour {
		errs = append(errs, fmt.Errorf("%s: want at least 1h", c.setting("message-max-age", c.MessageMaxAge)))
	}
	if c.PurgeInterval < time.Second {
		errs = append(errs, fmt.Errorf("%s: want at least 1s", c.setting("purge-interval", c.PurgeInterval)))
	}
	if c.SendTimeout < time.Second || c.SendTimeout > 25*time.Second {
		errs = append(errs, fmt.Errorf("%s: want 1s to 25s (a request may take 30s in all)", c.setting("send-timeout", c.SendTimeout)))
	}
	if c.AppCacheTTL < 0 || c.AppCacheTTL > time.Minute {
		errs = append(errs, fmt.Errorf("%s: want 0 (read the store every time) to 1m", c.setting("app-cache-ttl", c.AppCacheTTL)))
	}
	for _, f := range []struct{ flag, addr string }{{"pprof-addr", c.PprofAddr}, {"metrics-addr", c.MetricsAddr}} {
		if _, _, err := net.SplitHostPort(f.addr); f.addr != "" && err != nil {
			errs = append(errs, fmt.Errorf("%s: want host:port: %v", c.setting(f.flag, strconv.Quote(f.addr)), err))
		}
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%s: want a positive duration", c.setting("shutdown-timeout", c.ShutdownTimeout)))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("%s: want text or json", c.setting("log-format", strconv.Quote(c.LogFormat))))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("%s: want debug, info, warn or error", c.setting("log-level", strconv.Quote(c.LogLevel))))
	}
	return errors.Join(errs...)
}

// flagGiven reports whether the command line gave the flag name.
func (c *config) flagGiven(name string) bool {
	return c.flags != nil && isFlagSet(c.flags, name)
}

// settingName names the setting of the flag name as it was given: its
// environment variable when the value came from there (the flag not
// given, the variable set), else the flag.
func (c *config) settingName(name string) string {
	if v := envOfFlag(name); !c.flagGiven(name) && os.Getenv(v) != "" {
		return v
	}
	return "--" + name
}

// setting names the setting of the flag name with its value, as a problem
// shows it: "--send-timeout 1m0s", or the variable as it was written,
// OTPD_SEND_TIMEOUT="60s", when the value came from the environment.
func (c *config) setting(name string, value any) string {
	if n := c.settingName(name); n != "--"+name {
		return fmt.Sprintf("%s=%q", n, os.Getenv(n))
	}
	return fmt.Sprintf("--%s %v", name, value)
}

// envOfFlag is the environment variable of the flag name: OTPD_ and the
// name in capitals, '-' written '_' (send-timeout: OTPD_SEND_TIMEOUT).
func envOfFlag(name string) string {
	return "OTPD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// flagOfEnv is the flag of the environment variable name (envOfFlag's
// inverse).
func flagOfEnv(name string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "OTPD_"), "_", "-"))
}

// envError is a malformed value of the environment variable name.
type envError struct {
	name string
	err  error
}

// logger is the logger --log-level and --log-format ask for, on standard
// error.
func (c *config) logger() *slog.Logger { return c.loggerTo(os.Stderr) }

// loggerTo is logger writing to w.
func (c *config) loggerTo(w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		// Durations as Go writes them ("1.5s"), not as integer
		// nanoseconds, which JSON would otherwise show.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// isRegion accepts names shaped like AWS regions: lowercase letters, digits
// and hyphens, such as us-east-1 or eu-central-2.
func isRegion(s string) bool {
	if len(s) < 3 || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

// envInt and envDuration fall back on a malformed value and record the
// problem, so that validate reports it with the others.
func (c *config) envInt(name string, fallback int64) int64 {
	v := env(name, "")
	if v == "" {
		return fallback
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		c.envErrs = append(c.envErrs, envError{name, fmt.Errorf("%s=%q: want an integer", name, v)})
		return fallback
	}
	return n
}

func (c *config) envDuration(name string, fallback time.Duration) time.Duration {
	v := env(name, "")
	if v == "" {
		return fallback
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		c.envErrs = append(c.envErrs, envError{name, fmt.Errorf("%s=%q: want a duration such as 90s or 1h", name, v)})
		return fallback
	}
	return d
}
