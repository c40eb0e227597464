package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/otpd/otpd/internal/otp"

	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/sms/awssms"
	"github.com/otpd/otpd/internal/sms/route"
	"github.com/otpd/otpd/internal/sms/smpp"
	"github.com/otpd/otpd/internal/sms/twilio"
	"github.com/otpd/otpd/internal/sms/webhook"
)

// carrierFile is the --config file: the carriers and the routes between
// them. Secrets never appear in it: each is named by an environment
// variable (…_env) or a file (…_file).
type carrierFile struct {
	Carriers []carrierConfig `yaml:"carriers"`
	Routes   []routeConfig   `yaml:"routes"`
	Breaker  breakerConfig   `yaml:"breaker"`
}

type breakerConfig struct {
	Failures int           `yaml:"failures"`
	Cooldown time.Duration `yaml:"cooldown"`
}

type carrierConfig struct {
	Name          string   `yaml:"name"`
	Type          string   `yaml:"type"` // smpp, aws, twilio, webhook
	Originations  []string `yaml:"originations"`
	RatePerSecond float64  `yaml:"rate_per_second"`
	Burst         int      `yaml:"burst"`
	// Timeout bounds one attempt on this carrier, leaving time for the next.
	Timeout time.Duration `yaml:"timeout"`

	SMPP    *smppConfig    `yaml:"smpp"`
	AWS     *awsConfig     `yaml:"aws"`
	Twilio  *twilioConfig  `yaml:"twilio"`
	Webhook *webhookConfig `yaml:"webhook"`
}

type smppConfig struct {
	Addr               string        `yaml:"addr"`
	SystemID           string        `yaml:"system_id"`
	PasswordEnv        string        `yaml:"password_env"`
	PasswordFile       string        `yaml:"password_file"`
	SystemType         string        `yaml:"system_type"`
	TLS                bool          `yaml:"tls"`
	EnquireLink        time.Duration `yaml:"enquire_link"`
	Window             int           `yaml:"window"`
	RatePerSecond      float64       `yaml:"rate_per_second"`
	SubmitTimeout      time.Duration `yaml:"submit_timeout"`
	RegisteredDelivery *bool         `yaml:"registered_delivery"`
}

type awsConfig struct {
	Region           string        `yaml:"region"`
	ConfigurationSet string        `yaml:"configuration_set"`
	MaxPrice         string        `yaml:"max_price"`
	Endpoint         string        `yaml:"endpoint"`
	Timeout          time.Duration `yaml:"timeout"`
}

type twilioConfig struct {
	AccountSID          string        `yaml:"account_sid"`
	AuthTokenEnv        string        `yaml:"auth_token_env"`
	AuthTokenFile       string        `yaml:"auth_token_file"`
	APIKeySID           string        `yaml:"api_key_sid"`
	APIKeySecretEnv     string        `yaml:"api_key_secret_env"`
	APIKeySecretFile    string        `yaml:"api_key_secret_file"`
	From                string        `yaml:"from"`
	MessagingServiceSID string        `yaml:"messaging_service_sid"`
	StatusCallbackURL   string        `yaml:"status_callback_url"`
	BaseURL             string        `yaml:"base_url"`
	Timeout             time.Duration `yaml:"timeout"`
}

type webhookConfig struct {
	URL        string        `yaml:"url"`
	SecretEnv  string        `yaml:"secret_env"`
	SecretFile string        `yaml:"secret_file"`
	Timeout    time.Duration `yaml:"timeout"`
}

type routeConfig struct {
	App       string   `yaml:"app"`
	Countries []string `yaml:"countries"`
	Prefixes  []string `yaml:"prefixes"`
	Carriers  []string `yaml:"carriers"`
}

// readCarrierFile parses the --config file, refusing unknown keys (a typo
// must not silently drop a setting).
func readCarrierFile(path string) (carrierFile, error) {
	var f carrierFile
	data, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("%s: %w", path, explainYAML(err))
	}
	return f, nil
}

// yamlSections names the parts of the --config file by the Go types the
// YAML decoder's errors name them by.
var yamlSections = map[string]struct {
	name string
	t    reflect.Type
}{
	"main.carrierFile":   {"the file's top level", reflect.TypeFor[carrierFile]()},
	"main.carrierConfig": {"a carrier", reflect.TypeFor[carrierConfig]()},
	"main.smppConfig":    {"smpp", reflect.TypeFor[smppConfig]()},
	"main.awsConfig":     {"aws", reflect.TypeFor[awsConfig]()},
	"main.twilioConfig":  {"twilio", reflect.TypeFor[twilioConfig]()},
	"main.webhookConfig": {"webhook", reflect.TypeFor[webhookConfig]()},
	"main.routeConfig":   {"a route", reflect.TypeFor[routeConfig]()},
	"main.breakerConfig": {"breaker", reflect.TypeFor[breakerConfig]()},
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type (\S+)`)

// explainYAML rewrites the YAML decoder's errors in the file's terms: an
// unknown setting with the settings its section has, a duration written as
// a bare number with the unit it needs.
func explainYAML(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	lines := make([]string, len(te.Errors))
	for i, line := range te.Errors {
		line = unknownField.ReplaceAllStringFunc(line, func(m string) string {
			sub := unknownField.FindStringSubmatch(m)
			sec, ok := yamlSections[sub[2]]
			if !ok {
				return m
			}
			return fmt.Sprintf("%s is not a setting of %s, whose settings are %s", sub[1], sec.name, strings.Join(yamlKeys(sec.t), ", "))
		})
		if strings.HasSuffix(line, "into time.Duration") {
			line += ": write a duration with its unit, such as 30s, 500ms or 1m"
		}
		lines[i] = line
	}
	return errors.New("yaml: unmarshal errors:\n  " + strings.Join(lines, "\n  "))
}

// yamlKeys returns the YAML keys of struct type t, in order.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if k, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	return keys
}

// carriers is what the --config file builds: the router that otpd sends
// through, and what needs an HTTP endpoint or closing.
type carriers struct {
	router    *route.Router
	callbacks map[string]http.Handler // path under /_otpd/callbacks/ → handler
	closers   []func() error
	// checks say whether a carrier could send now, beyond its
	// configuration (an AWS carrier's credentials): otpd serve warns of a
	// failed one, --check-config fails.
	checks []func(ctx context.Context) error
}

// check runs every carrier's check at once, each bounded by
// carrierCheckTimeout, and returns their errors in the carriers' order.
func (cs *carriers) check(ctx context.Context) []error {
	errs := make([]error, len(cs.checks))
	var wg sync.WaitGroup
	for i, check := range cs.checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, carrierCheckTimeout)
			defer cancel()
			errs[i] = check(cctx)
		})
	}
	wg.Wait()
	return slices.DeleteFunc(errs, func(err error) bool { return err == nil })
}

// carrierCheckTimeout bounds one carrier's check at start-up (an instance
// role's credentials take a request or two).
const carrierCheckTimeout = 10 * time.Second

// loadCarriers reads the carrier file at path (--config) and builds its
// carriers and their router; its errors name the file.
func loadCarriers(ctx context.Context, path string, reporter sms.Reporter, obs carrierObserver, log *slog.Logger) (*carriers, error) {
	f, err := readCarrierFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	cs, err := buildCarriers(ctx, f, reporter, obs, log, time.Now)
	if err != nil {
		return nil, fmt.Errorf("--config %s:\n%w", path, err)
	}
	return cs, nil
}

// carrierObserver hears of the carriers: the router's attempts and
// circuits, and the links of the carriers that keep one (SMPP).
type carrierObserver interface {
	route.Observer
	LinkState(carrier string, up bool)
}

// buildCarriers makes every carrier of f and the router over them. It
// reports every problem at once. reporter receives delivery reports.
func buildCarriers(ctx context.Context, f carrierFile, reporter sms.Reporter, obs carrierObserver, log *slog.Logger, now func() time.Time) (*carriers, error) {
	var errs []error
	out := &carriers{callbacks: map[string]http.Handler{}}
	var list []route.Carrier
	for i, c := range f.Carriers {
		// A carrier without a name is not built: its package would name it
		// by a default ("smpp", "twilio") that the file does not show, and
		// serve its Twilio callbacks under no name. route.New refuses its
		// stand-in, saying so.
		var carrier sms.Carrier = unbuilt(c.Name)
		if c.Name != "" {
			built, err := buildCarrier(ctx, c, reporter, obs, log, out)
			if err != nil {
				// The stand-in lets the routes and the carrier's other
				// settings be checked too, so that every problem shows
				// at once.
				errs = append(errs, fmt.Errorf("carriers[%d] (%s): %w", i, c.Name, err))
			} else {
				carrier = built
			}
		}
		list = append(list, route.Carrier{Carrier: carrier, Originations: c.Originations, RatePerSecond: c.RatePerSecond, Burst: c.Burst, Timeout: c.Timeout})
	}
	var rules []route.Rule
	for _, r := range f.Routes {
		rules = append(rules, route.Rule{AppID: r.App, Countries: r.Countries, Prefixes: r.Prefixes, Carriers: r.Carriers})
	}
	router, err := route.New(route.Config{
		Carriers: list,
		Rules:    rules,
		Breaker:  route.BreakerConfig{Failures: f.Breaker.Failures, Cooldown: f.Breaker.Cooldown},
		Observer: obs,
		Now:      now,
		Logger:   log,
	})
	if err != nil {
		errs = append(errs, errors.New(inYAMLNames(err.Error())))
	}
	if len(errs) > 0 {
		out.close()
		return nil, errors.Join(errs...)
	}
	out.router = router
	return out, nil
}

// inYAMLNames returns a message of the route package with its names of
// settings, which are its Go API's, turned into the names --config gives
// them, outside quotes and parentheses, where the file's own values are (a
// carrier named "BurstSMS" keeps its name).
func inYAMLNames(msg string) string {
	var b strings.Builder
	last := 0
	for _, span := range quotedOrParenthesized.FindAllStringIndex(msg, -1) {
		b.WriteString(yamlNames.Replace(msg[last:span[0]]))
		b.WriteString(msg[span[0]:span[1]])
		last = span[1]
	}
	b.WriteString(yamlNames.Replace(msg[last:]))
	return b.String()
}

var quotedOrParenthesized = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|\([^()]*\)`)

// yamlNames turns the route package's names of settings into --config's.
var yamlNames = strings.NewReplacer(
	"route: ", "",
	"Breaker.Failures", "breaker.failures",
	"Breaker.Cooldown", "breaker.cooldown",
	"no Carriers", "no carriers",
	"Carriers[", "carriers[",
	"no Rules", "no routes",
	"Rules[", "routes[",
	"with Carriers only", "with carriers only",
	"Originations", "originations",
	"RatePerSecond", "rate_per_second",
	"Burst", "burst",
	"Timeout", "timeout",
	"AppID", "app",
	"Countries", "countries",
	"Prefixes", "prefixes",
	"Carriers", "carriers",
)

// unbuilt stands in, for the check of the routes, for a carrier whose own
// settings were refused; no router with one is ever used.
type unbuilt string

func (u unbuilt) Name() string { return string(u) }

func (u unbuilt) Send(context.Context, sms.Message) (sms.Receipt, error) {
	return sms.Receipt{}, fmt.Errorf("carrier %s was not built", string(u))
}

// carrierTypes are the carriers' types, each with settings of its name.
var carrierTypes = []string{"smpp", "aws", "twilio", "webhook"}

func buildCarrier(ctx context.Context, c carrierConfig, reporter sms.Reporter, obs carrierObserver, log *slog.Logger, out *carriers) (sms.Carrier, error) {
	settings := 0
	for _, set := range []bool{c.SMPP != nil, c.AWS != nil, c.Twilio != nil, c.Webhook != nil} {
		if set {
			settings++
		}
	}
	if !slices.Contains(carrierTypes, c.Type) {
		return nil, fmt.Errorf("type %q: want one of %s", c.Type, strings.Join(carrierTypes, ", "))
	}
	if settings != 1 {
		return nil, fmt.Errorf("type %q takes its settings under %s:, and no other settings", c.Type, c.Type)
	}
	switch {
	case c.Type == "smpp" && c.SMPP != nil:
		password, err := secret("password", c.SMPP.PasswordEnv, c.SMPP.PasswordFile)
		if err != nil {
			return nil, err
		}
		cfg := smpp.Config{
			Name: c.Name, Addr: c.SMPP.Addr, SystemID: c.SMPP.SystemID, Password: password,
			SystemType: c.SMPP.SystemType, EnquireLink: c.SMPP.EnquireLink, Window: c.SMPP.Window,
			RatePerSecond: c.SMPP.RatePerSecond, SubmitTimeout: c.SMPP.SubmitTimeout,
			RegisteredDelivery: c.SMPP.RegisteredDelivery == nil || *c.SMPP.RegisteredDelivery,
			Reporter:           reporter,
			Logger:             log,
			OnLink:             obs.LinkState,
		}
		if c.SMPP.TLS {
			host, _, _ := net.SplitHostPort(c.SMPP.Addr)
			cfg.TLS = &tls.Config{ServerName: host}
		}
		carrier, err := smpp.New(ctx, cfg)
		if err != nil {
			return nil, err
		}
		out.closers = append(out.closers, carrier.Close)
		return carrier, nil
	case c.Type == "aws" && c.AWS != nil:
		carrier, err := awssms.New(ctx, awssms.Config{
			Name: c.Name, Region: c.AWS.Region, ConfigurationSetName: c.AWS.ConfigurationSet,
			MaxPrice: c.AWS.MaxPrice, Endpoint: c.AWS.Endpoint, Timeout: c.AWS.Timeout, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		out.checks = append(out.checks, carrier.CheckCredentials)
		return carrier, nil
	case c.Type == "twilio" && c.Twilio != nil:
		token, err := optionalSecret("auth_token", c.Twilio.AuthTokenEnv, c.Twilio.AuthTokenFile)
		if err != nil {
			return nil, err
		}
		keySecret, err := optionalSecret("api_key_secret", c.Twilio.APIKeySecretEnv, c.Twilio.APIKeySecretFile)
		if err != nil {
			return nil, err
		}
		carrier, err := twilio.New(twilio.Config{
			Name: c.Name, AccountSID: c.Twilio.AccountSID, AuthToken: token,
			APIKeySID: c.Twilio.APIKeySID, APIKeySecret: keySecret,
			From: c.Twilio.From, MessagingServiceSID: c.Twilio.MessagingServiceSID,
			StatusCallbackURL: c.Twilio.StatusCallbackURL, BaseURL: c.Twilio.BaseURL,
			Timeout: c.Twilio.Timeout, Reporter: reporter, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		if u := c.Twilio.StatusCallbackURL; u != "" {
			path := "/_otpd/callbacks/twilio/" + c.Name
			out.callbacks["twilio/"+c.Name] = carrier.CallbackHandler()
			if parsed, err := url.Parse(u); err == nil && !strings.HasSuffix(parsed.Path, path) {
				log.Warn("a Twilio carrier's status_callback_url does not end with the path where otpd takes its callbacks: unless a proxy rewrites it, its delivery reports will not reach otpd",
					"carrier", c.Name, "status_callback_url", u, "want_path", path)
			}
		}
		return carrier, nil
	case c.Type == "webhook" && c.Webhook != nil:
		key, err := secret("secret", c.Webhook.SecretEnv, c.Webhook.SecretFile)
		if err != nil {
			return nil, err
		}
		return webhook.New(webhook.Config{Name: c.Name, URL: c.Webhook.URL, Secret: []byte(key), Timeout: c.Webhook.Timeout})
	}
	return nil, fmt.Errorf("type %q with these settings: want type smpp with smpp:, aws with aws:, twilio with twilio: or webhook with webhook:", c.Type)
}

// secret reads a required secret from the environment variable or the file
// the configuration names.
func secret(what, envName, file string) (string, error) {
	v, err := optionalSecret(what, envName, file)
	if err == nil && v == "" {
		err = fmt.Errorf("%s: name an environment variable (%s_env) or a file (%s_file) that holds it", what, what, what)
	}
	return v, err
}

func optionalSecret(what, envName, file string) (string, error) {
	switch {
	case envName != "" && file != "":
		return "", fmt.Errorf("%s: give %s_env or %s_file, not both", what, what, what)
	case envName != "":
		v := os.Getenv(envName)
		if v == "" {
			return "", fmt.Errorf("%s: the environment variable %s is empty or not set", what, envName)
		}
		return v, nil
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		return strings.TrimSpace(string(data)), nil
	}
	return "", nil
}

// reports hands delivery reports to the OTP service, which records them.
// Carriers are built before the service (which sends through them), so the
// service is set once it exists; a report that arrives before is logged and
// dropped.
type reports struct {
	log     *slog.Logger
	service atomic.Pointer[otp.Service]
}

func (r *reports) Report(ctx context.Context, rep sms.DeliveryReport) {
	if svc := r.service.Load(); svc != nil {
		svc.Report(ctx, rep)
		return
	}
	r.log.WarnContext(ctx, "a delivery report arrived before otpd was ready; dropped", "carrier", rep.Carrier,
		"carrier_message_id", rep.CarrierMessageID, "state", rep.State)
}

// close closes the carriers at once: an SMPP carrier's Close may take
// seconds (its unbind, then the delivery receipts it still has to report).
func (c *carriers) close() {
	var wg sync.WaitGroup
	for _, f := range c.closers {
		wg.Go(func() { f() }) // every Close returns nil
	}
	wg.Wait()
}
