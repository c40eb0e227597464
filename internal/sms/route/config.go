package route

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/otpd/otpd/internal/phone"
	"github.com/otpd/otpd/internal/sms"
)

const defaultName = "route"

var validName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// New returns a router for cfg, or an error naming every problem of cfg.
func New(cfg Config) (*Router, error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf("route: "+format, args...)) }

	name := cfg.Name
	if name == "" {
		name = defaultName
	}
	if !validName.MatchString(name) {
		fail("Name %q must be 1 to 64 letters, digits, '-', '_' or '.'", name)
	}
	breaker := cfg.Breaker
	switch {
	case breaker.Failures == 0:
		breaker.Failures = DefaultFailures
	case breaker.Failures < 0:
		fail("Breaker.Failures %d is negative; leave it 0 for the default of %d", breaker.Failures, DefaultFailures)
	}
	switch {
	case breaker.Cooldown == 0:
		breaker.Cooldown = DefaultCooldown
	case breaker.Cooldown < 0:
		fail("Breaker.Cooldown %v is negative; leave it 0 for the default of %v", breaker.Cooldown, DefaultCooldown)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	start := now()

	byName := map[string]*member{}
	var names []string
	if len(cfg.Carriers) == 0 {
		fail("no Carriers: give at least one")
	}
	for i, c := range cfg.Carriers {
		if c.Carrier == nil {
			fail("Carriers[%d] has no sms.Carrier", i)
			continue
		}
		m, problems := newMember(c, start)
		where := fmt.Sprintf("Carriers[%d] (%s)", i, m.name)
		if m.name == "" {
			where = fmt.Sprintf("Carriers[%d]", i)
		}
		for _, p := range problems {
			fail("%s: %s", where, p)
		}
		switch {
		case m.name == "":
			fail("%s has no name: give it 1 to 64 letters, digits, '-', '_' or '.', by which rules, logs and metrics name it", where)
		case !validName.MatchString(m.name):
			fail("%s: the carrier's name must be 1 to 64 letters, digits, '-', '_' or '.': rules name carriers by it", where)
			if byName[m.name] == nil {
				byName[m.name] = m // so that a rule naming it is not refused again for it
			}
		case byName[m.name] != nil:
			fail("%s: another carrier has the name %q; give each carrier its own", where, m.name)
		default:
			byName[m.name] = m
			names = append(names, m.name)
		}
	}

	if len(cfg.Rules) == 0 {
		fail("no Rules: give at least a catch-all rule, with Carriers only")
	}
	rules := make([]rule, 0, len(cfg.Rules))
	catchAll := map[string]int{} // AppID ("" for any) → index of its first catch-all rule
	for i, r := range cfg.Rules {
		rl, problems := newRule(r, byName, names)
		for _, p := range problems {
			fail("Rules[%d]: %s", i, p)
		}
		if j, ok := catchAll[""]; ok {
			fail("Rules[%d] can never match: Rules[%d] before it matches every message; put the most specific rules first", i, j)
		} else if j, ok := catchAll[r.AppID]; ok {
			fail("Rules[%d] can never match: Rules[%d] before it matches every message of application %s; put the most specific rules first", i, j, r.AppID)
		}
		if len(r.Countries) == 0 && len(r.Prefixes) == 0 {
			if _, ok := catchAll[r.AppID]; !ok {
				catchAll[r.AppID] = i
			}
		}
		rules = append(rules, rl)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Observer != nil {
		for _, n := range names {
			cfg.Observer.BreakerState(n, false)
		}
	}
	return &Router{
		name:     name,
		rules:    rules,
		breaker:  breaker,
		observer: cfg.Observer,
		now:      now,
		log:      cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
	}, nil
}

// newMember returns the member for c, and what is wrong with c.
func newMember(c Carrier, now time.Time) (*member, []string) {
	var problems []string
	m := &member{name: c.Name(), carrier: c.Carrier, timeout: c.Timeout, refilled: now}
	m.anyOrigin = len(c.Originations) == 0
	m.origins = map[string]bool{}
	for _, o := range c.Originations {
		switch {
		case o == "*":
			m.anyOrigin = true
		case m.origins[o]:
			problems = append(problems, fmt.Sprintf("Originations lists %q twice", o))
		default:
			if err := sms.CheckOrigination(o); err != nil {
				problems = append(problems, fmt.Sprintf("Originations: %q %s", o, err))
			}
			m.origins[o] = true
			m.allowed = append(m.allowed, o)
		}
	}
	if m.anyOrigin && len(m.origins) > 0 {
		problems = append(problems, `Originations has "*", which allows every identity, and others: keep either "*" or the list`)
	}
	switch {
	case math.IsNaN(c.RatePerSecond) || math.IsInf(c.RatePerSecond, 0) || c.RatePerSecond < 0:
		problems = append(problems, fmt.Sprintf("RatePerSecond %v must be a positive number, or 0 for no limit", c.RatePerSecond))
	case c.Burst < 0:
		problems = append(problems, fmt.Sprintf("Burst %d is negative; leave it 0 for one second's worth of sends", c.Burst))
	case c.Burst > 0 && c.RatePerSecond == 0:
		problems = append(problems, fmt.Sprintf("Burst %d needs a RatePerSecond: without one the carrier has no limit", c.Burst))
	case c.RatePerSecond > 0:
		m.rate = c.RatePerSecond
		m.burst = float64(c.Burst)
		if c.Burst == 0 {
			m.burst = math.Ceil(c.RatePerSecond)
		}
		m.tokens = m.burst
	}
	if c.Timeout < 0 {
		problems = append(problems, fmt.Sprintf("Timeout %v is negative; leave it 0 for the caller's deadline alone", c.Timeout))
	}
	return m, problems
}

// newRule returns the rule for r, and what is wrong with r. names are the
// carriers' names in order, for messages.
func newRule(r Rule, byName map[string]*member, names []string) (rule, []string) {
	var problems []string
	rl := rule{appID: r.AppID}
	if r.AppID != "" && !isAppID(r.AppID) {
		problems = append(problems, fmt.Sprintf("AppID %q must be an application ID (32 lowercase hexadecimal characters), or empty for every application", r.AppID))
	}
	if len(r.Countries) > 0 {
		rl.countries = map[string]bool{}
	}
	for _, c := range r.Countries {
		upper := strings.ToUpper(c)
		if len(upper) != 2 || !phonenumbers.GetSupportedRegions()[upper] {
			hint := ""
			if upper == "UK" {
				hint = " (the United Kingdom is GB)"
			}
			problems = append(problems, fmt.Sprintf("Countries: %q is not an ISO 3166-1 alpha-2 code with phone numbers%s, such as US, GB or DE", c, hint))
			continue
		}
		rl.countries[upper] = true
	}
	for _, p := range r.Prefixes {
		if !isE164Prefix(p) {
			problems = append(problems, fmt.Sprintf("Prefixes: %q is not an E.164 prefix: '+' then 1 to 15 digits, the first not 0, such as +1 or +4420", p))
			continue
		}
		if rl.countries != nil && !overlapsAny(p, rl.countries) {
			problems = append(problems, fmt.Sprintf("Prefixes: %q lies in none of the rule's Countries %v, and a rule matches only when both do: it can never match", p, r.Countries))
		}
		rl.prefixes = append(rl.prefixes, p)
	}
	if len(r.Carriers) == 0 {
		problems = append(problems, "Carriers is empty: name at least one carrier to send through")
	}
	for _, n := range r.Carriers {
		c := byName[n]
		switch {
		case c == nil:
			there := "none has a valid name"
			if len(names) > 0 {
				there = "there are " + strings.Join(quoteAll(names), ", ")
			}
			problems = append(problems, fmt.Sprintf("Carriers: no carrier is named %q (%s)", n, there))
		case slices.Contains(rl.carriers, c):
			problems = append(problems, fmt.Sprintf("Carriers lists %q twice", n))
		default:
			rl.carriers = append(rl.carriers, c)
		}
	}
	return rl, problems
}

// overlapsAny reports whether some number may both start with prefix and
// belong to one of countries: whether the prefix and a country's calling
// code agree as far as the shorter goes.
func overlapsAny(prefix string, countries map[string]bool) bool {
	digits := prefix[1:]
	for c := range countries {
		code := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(c))
		if strings.HasPrefix(digits, code) || strings.HasPrefix(code, digits) {
			return true
		}
	}
	return false
}

// isE164Prefix reports whether s is '+' then 1 to 15 digits, the first not 0.
func isE164Prefix(s string) bool {
	return len(s) >= 2 && len(s) <= 16 && s[0] == '+' && s[1] != '0' && phone.IsDigits(s[1:])
}

// isAppID reports whether id has the form of otpd's application IDs: 32
// lowercase hexadecimal characters.
func isAppID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !(id[i] >= '0' && id[i] <= '9' || id[i] >= 'a' && id[i] <= 'f') {
			return false
		}
	}
	return true
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
