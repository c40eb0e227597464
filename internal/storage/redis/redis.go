// Package redis implements storage.Store on Redis, standalone or Redis
// Cluster, with the client github.com/redis/rueidis. Several otpd instances
// may share one Redis: every operation that the contract calls atomic is one
// Lua script on keys of one hash slot, and VerifyCode, which must call the
// caller's Matches in Go, is made atomic by an optimistic second script (see
// VerifyCode).
//
// # Keys
//
// With the default KeyPrefix "otpd:", and <app>, <destination>, <gen>,
// <message>, <carrier> and <carrier message> escaped (see escape) so that no
// value can end a hash tag or a key part:
//
//	otpd:app:{<app>}                          hash: one application
//	otpd:apps                                 sorted set, score 0: the IDs of the applications, for ListApps
//	otpd:{<app>:<destination>}:code:<gen>:<reference>   hash: one code
//	otpd:{<app>:<destination>}:fail:<gen>     sorted set: wrong guesses (score: time in ms)
//	otpd:send:{<app>}:<key>                   hash: one send record
//	otpd:{outbox}                             sorted set: the development outbox (score: time in ms)
//	otpd:{outbox}:seq                         counter: arrival order of outbox messages
//	otpd:msg:{<message>}                      hash: one message record
//	otpd:carrier-msg:{<carrier>:<carrier message>}  string: "<version>\t<message>", the record a report names
//	otpd:{messages}                           sorted set: the message records (score: time in ms)
//	otpd:key-check                            string: the code hashing key's check (KeyCheck)
//
// The keys of one (application, destination) share a hash tag, so the scripts
// on them touch one slot; a send record shares its application's slot, so
// that ClaimSend can read the application's generation atomically. Codes
// and failures carry the application's generation in their key, and the
// operations on them first check that the application exists with that
// generation: a deleted application's codes and budgets never count again,
// even under a re-created application with the same ID, and expire on their
// own. A message record's scripts touch only its hash; how the record, its
// index entry and its place in the listing, three slots, stay consistent is
// told in messages.go.
//
// # Expiry
//
// Codes, failures and send records expire by TTL, set as relative durations
// (PEXPIRE) when they are written: a code lives ExpiresAt-CreatedAt and
// storage.ExpiredCodeKept more (to be told expired, not unknown), failures
// the budget window, a send record until its lease ends or it expires,
// counted from the Now it was claimed at; each plus a small margin
// (Options.TTLMargin). Expiry as the contract defines it is still decided
// only from the times the caller gives: the TTL only reclaims the memory, a
// little after the record stopped mattering. Redis's own clock does not
// matter (the TTLs are relative); the clocks of the otpd instances must agree
// within the margin, or one instance may trim failures another still counts,
// or see a code dropped early (OutcomeUnknown). Purge therefore only trims the
// development outbox, which is also capped on every append, and the message
// records: those carry no TTL, since their retention
// (Retention.MessageMaxAge) reaches the store only when Purge is called;
// Purge deletes them by age, and every put caps them (Options.MessageCap).
//
// # Durability
//
// A method that returned nil has had its effect applied by the Redis primary
// that owns the key. What Redis persists, and what a replica promoted by a
// failover has, depends on the server's configuration (appendonly, appendfsync,
// replication being asynchronous): see the README.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/otpd/otpd/internal/storage"
)

// Defaults of Options.
const (
	DefaultKeyPrefix   = "otpd:"
	DefaultDialTimeout = 3 * time.Second
	DefaultIOTimeout   = 3 * time.Second
	DefaultTimeout     = 5 * time.Second
	DefaultTTLMargin   = storage.ClockSkew
	DefaultOutboxCap   = 10_000
	DefaultMessageCap  = 100_000
)

// Options tells Open which Redis to use and how.
type Options struct {
	// Addrs are host:port addresses: the server, or seed nodes of a
	// cluster.
	Addrs []string
	// Cluster says that Addrs are nodes of a Redis Cluster. When false and
	// there is one address, Open detects a cluster by itself.
	Cluster bool
	// Username and Password authenticate (AUTH); both may be empty.
	Username string
	Password string
	// DB is the database number (SELECT); it must be 0 on a cluster.
	DB int
	// KeyPrefix starts every key; DefaultKeyPrefix if empty. It must not
	// contain '{' or '}', which would change the keys' hash slots.
	KeyPrefix string

	// DialTimeout bounds connecting; DefaultDialTimeout if zero.
	DialTimeout time.Duration
	// IOTimeout bounds the wait for Redis to answer on a connection, after
	// which the connection is dropped and made anew; DefaultIOTimeout if
	// zero.
	IOTimeout time.Duration
	// Timeout bounds every method call (unless its context ends sooner);
	// DefaultTimeout if zero.
	Timeout time.Duration
	// TTLMargin is added to every TTL, and failures are trimmed only that
	// long after they left the window, for clocks that differ a little
	// between otpd instances; DefaultTTLMargin (storage.ClockSkew) if
	// zero.
	TTLMargin time.Duration
	// OutboxCap is how many outbox messages AppendOutbox keeps at most
	// (the newest); DefaultOutboxCap if zero.
	OutboxCap int
	// MessageCap is how many message records RecordSend keeps at most
	// (the newest), whatever Purge's Retention.MessageMaxAge;
	// DefaultMessageCap if zero.
	MessageCap int
}

// ParseURL reads a Redis URL:
//
//	redis://[[user]:password@]host[:port][/db]
//	redis-cluster://[[user]:password@]host[:port],host[:port],...
//
// The port defaults to 6379 and the database to 0; a cluster's seed nodes are
// separated by commas. Query parameters are not accepted.
func ParseURL(s string) (Options, error) {
	// url.Parse reads one host: the host list is taken out first and put
	// back as one placeholder host.
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return Options{}, errors.New("storage/redis: URL: want redis:// or redis-cluster://")
	}
	authority, path := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	userinfo, hosts := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hosts = authority[:i+1], authority[i+1:]
	}
	u, err := url.Parse(scheme + "://" + userinfo + "placeholder" + path)
	if err != nil {
		return Options{}, fmt.Errorf("storage/redis: parse URL: %w", redactURLError(err))
	}
	var opt Options
	switch u.Scheme {
	case "redis":
	case "redis-cluster":
		opt.Cluster = true
	default:
		return Options{}, fmt.Errorf("storage/redis: URL scheme %q: want redis or redis-cluster", u.Scheme)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(path, "?#") {
		return Options{}, errors.New("storage/redis: URL has parts other than user, password, hosts and database")
	}
	if u.User != nil {
		opt.Username = u.User.Username()
		opt.Password, _ = u.User.Password()
	}
	if hosts == "" {
		return Options{}, errors.New("storage/redis: URL names no host")
	}
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil { // no port, or an IPv6 address without brackets
			host, port = strings.Trim(h, "[]"), "6379"
			if strings.Contains(host, ":") && !strings.HasPrefix(h, "[") {
				return Options{}, fmt.Errorf("storage/redis: URL host %q: put an IPv6 address in brackets", h)
			}
		}
		if host == "" || strings.ContainsAny(host, "[]/@ ") {
			return Options{}, fmt.Errorf("storage/redis: URL host %q is not a host name or address", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return Options{}, fmt.Errorf("storage/redis: URL host %q: bad port", h)
		}
		opt.Addrs = append(opt.Addrs, net.JoinHostPort(host, port))
	}
	if !opt.Cluster && len(opt.Addrs) > 1 {
		return Options{}, errors.New("storage/redis: a redis:// URL names one host; use redis-cluster:// for several")
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return Options{}, fmt.Errorf("storage/redis: URL database %q is not a number", db)
		}
		if opt.Cluster && n != 0 {
			return Options{}, errors.New("storage/redis: a cluster has only database 0")
		}
		opt.DB = n
	}
	return opt, nil
}

// redactURLError keeps a password out of a URL parse error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Store is a storage.Store on Redis. Open it with Open and release it with
// Close.
type Store struct {
	c          rueidis.Client
	cluster    bool
	keys       keys
	timeout    time.Duration
	margin     time.Duration
	outboxCap  int
	messageCap int

	// uniqueID makes values unique across instances (the members of the
	// failure sets, the versions of message records): a random prefix and
	// a counter.
	uniquePrefix string
	uniqueSeq    atomic.Uint64

	closeOnce sync.Once
}

var _ storage.Store = (*Store)(nil)

// Open connects to Redis and checks that it answers. The client reconnects
// by itself after Redis was away; meanwhile calls fail within the timeouts.
func Open(ctx context.Context, opt Options) (*Store, error) {
	if len(opt.Addrs) == 0 {
		return nil, errors.New("storage/redis: no address")
	}
	if opt.KeyPrefix == "" {
		opt.KeyPrefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(opt.KeyPrefix, "{}") {
		return nil, fmt.Errorf("storage/redis: key prefix %q contains a brace", opt.KeyPrefix)
	}
	if opt.DB < 0 || opt.Cluster && opt.DB != 0 {
		return nil, fmt.Errorf("storage/redis: database %d: want 0 on a cluster, at least 0 otherwise", opt.DB)
	}
	if !opt.Cluster && len(opt.Addrs) > 1 {
		return nil, errors.New("storage/redis: several addresses are the seed nodes of a cluster: set Cluster")
	}
	for _, d := range []time.Duration{opt.DialTimeout, opt.IOTimeout, opt.Timeout, opt.TTLMargin} {
		if d < 0 {
			return nil, errors.New("storage/redis: negative timeout or margin")
		}
	}
	if opt.OutboxCap < 0 || opt.MessageCap < 0 {
		return nil, errors.New("storage/redis: negative outbox or message cap")
	}
	opt.DialTimeout = orDefault(opt.DialTimeout, DefaultDialTimeout)
	opt.IOTimeout = orDefault(opt.IOTimeout, DefaultIOTimeout)
	opt.Timeout = orDefault(opt.Timeout, DefaultTimeout)
	opt.TTLMargin = orDefault(opt.TTLMargin, DefaultTTLMargin)
	if opt.OutboxCap == 0 {
		opt.OutboxCap = DefaultOutboxCap
	}
	if opt.MessageCap == 0 {
		opt.MessageCap = DefaultMessageCap
	}

	prefix := make([]byte, 8)
	if _, err := rand.Read(prefix); err != nil {
		return nil, fmt.Errorf("storage/redis: %w", err)
	}
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:      append([]string(nil), opt.Addrs...),
		Username:         opt.Username,
		Password:         opt.Password,
		SelectDB:         opt.DB,
		ClientName:       "otpd",
		DisableCache:     true, // no client-side caching: every read sees the latest write
		Dialer:           net.Dialer{Timeout: opt.DialTimeout, KeepAlive: time.Second},
		ConnWriteTimeout: opt.IOTimeout,
		RetryDelay:       retryDelay,
	})
	if err != nil {
		return nil, fmt.Errorf("storage/redis: connect to %s: %w", strings.Join(opt.Addrs, ","), err)
	}
	s := &Store{
		c:            c,
		cluster:      c.Mode() == rueidis.ClientModeCluster,
		keys:         keys{prefix: opt.KeyPrefix},
		timeout:      opt.Timeout,
		margin:       opt.TTLMargin,
		outboxCap:    opt.OutboxCap,
		messageCap:   opt.MessageCap,
		uniquePrefix: hex.EncodeToString(prefix),
	}
	switch {
	case opt.Cluster && !s.cluster:
		c.Close()
		return nil, fmt.Errorf("storage/redis: %s is not a Redis Cluster", strings.Join(opt.Addrs, ","))
	case s.cluster && opt.DB != 0:
		c.Close()
		return nil, fmt.Errorf("storage/redis: %s is a Redis Cluster, which has only database 0", strings.Join(opt.Addrs, ","))
	}
	// Open needs Redis to answer, not to take writes: a read-only look
	// (otpd apps list) works on a replica, and a server starts not ready.
	if err := s.answers(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

// retryDelay paces rueidis's retries of read-only commands after network
// errors: a few, over about a second and a half, so that a read rides out a
// dropped connection but fails fast, like a write, while Redis is away.
func retryDelay(attempts int, _ rueidis.Completed, _ error) time.Duration {
	if attempts >= 6 {
		return -1
	}
	return min(50*time.Millisecond<<attempts, 500*time.Millisecond)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Cluster reports whether the store talks to a Redis Cluster.
func (s *Store) Cluster() bool { return s.cluster }

// Ping reports whether Redis answers and takes writes; on a cluster,
// whether the node it reaches answers and considers the cluster's state ok
// (a primary that just became unreachable is noticed only after
// cluster-node-timeout). The write is a short-lived key of its own: it
// fails on a replica, on a Redis out of memory under noeviction, or one
// that refuses writes for want of replicas (min-replicas-to-write); on a
// cluster, it tells of the node that holds that key.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.answers(ctx); err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	probe := s.c.B().Set().Key(s.keys.writeProbe()).Value("1").PxMilliseconds(writeProbeTTL.Milliseconds()).Build()
	if err := s.c.Do(ctx, probe).Error(); err != nil {
		if _, refused := rueidis.IsRedisErr(err); refused {
			return fmt.Errorf("storage/redis: Redis answers but refuses writes: %w", err)
		}
		return fmt.Errorf("storage/redis: write probe: %w", err) // the connection, not Redis's answer
	}
	return nil
}

// answers reports whether Redis answers; on a cluster, whether the node it
// reaches answers and considers the cluster's state ok.
func (s *Store) answers(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if !s.cluster {
		if err := s.c.Do(ctx, s.c.B().Ping().Build()).Error(); err != nil {
			return fmt.Errorf("storage/redis: ping: %w", err)
		}
		return nil
	}
	// CLUSTER INFO goes to one node, which knows whether every slot is
	// served.
	info, err := s.c.Do(ctx, s.c.B().ClusterInfo().Build()).ToString()
	if err != nil {
		return fmt.Errorf("storage/redis: cluster info: %w", err)
	}
	if !strings.Contains(info, "cluster_state:ok") {
		return errors.New("storage/redis: the cluster's state is not ok")
	}
	return nil
}

// writeProbeTTL is how long Ping's probe key lives.
const writeProbeTTL = time.Minute

// Close releases the connections. Calls made after Close fail.
func (s *Store) Close() error {
	s.closeOnce.Do(s.c.Close)
	return nil
}

// bound limits ctx to the store's timeout.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// uniqueID returns a value unique across instances: a member for a failure
// set, a version of a message record.
func (s *Store) uniqueID() string {
	return s.uniquePrefix + strconv.FormatUint(s.uniqueSeq.Add(1), 16)
}

// ttlMS returns d plus the margin, in whole milliseconds, at least 1.
func (s *Store) ttlMS(d time.Duration) int64 {
	return max(1, (max(d, 0) + s.margin + time.Millisecond - 1).Milliseconds())
}

// keys builds the store's key names.
type keys struct{ prefix string }

// app is the hash of an application.
func (k keys) app(appID string) string { return k.prefix + "app:{" + escape(appID) + "}" }

// apps is the index of the applications' IDs.
func (k keys) apps() string { return k.prefix + "apps" }

// keyCheck holds the code hashing key's check.
func (k keys) keyCheck() string { return k.prefix + "key-check" }

// writeProbe is the key Ping writes to learn that Redis takes writes.
func (k keys) writeProbe() string { return k.prefix + "write-probe" }

// destination is the common start, with the hash tag, of the keys of one
// (application, destination).
func (k keys) destination(appID, destination string) string {
	return k.prefix + "{" + escape(appID) + ":" + escape(destination) + "}"
}

// code is the hash of a code.
func (k keys) code(key storage.CodeKey, generation string) string {
	return k.destination(key.AppID, key.Destination) + ":code:" + escape(generation) + ":" + key.ReferenceID
}

// failures is the sorted set of the wrong guesses at a destination.
func (k keys) failures(appID, generation, destination string) string {
	return k.destination(appID, destination) + ":fail:" + escape(generation)
}

// send is the hash of a send record; it shares the application's slot.
func (k keys) send(appID, key string) string { return k.prefix + "send:{" + escape(appID) + "}:" + key }

// outbox is the sorted set of the outbox messages; outboxSeq numbers them.
func (k keys) outbox() string    { return k.prefix + "{outbox}" }
func (k keys) outboxSeq() string { return k.prefix + "{outbox}:seq" }

// message is the hash of a message record.
func (k keys) message(messageID string) string { return k.prefix + "msg:{" + escape(messageID) + "}" }

// carrierMessage is the index entry that leads a carrier's report to its
// message record.
func (k keys) carrierMessage(carrier, carrierMessageID string) string {
	return k.prefix + "carrier-msg:{" + escape(carrier) + ":" + escape(carrierMessageID) + "}"
}

// messages is the sorted set of the message records, for listing.
func (k keys) messages() string { return k.prefix + "{messages}" }

// escape makes s safe as a key part followed by others: it percent-encodes
// '%', ':', '{' and '}', so that no value can end a hash tag or be confused
// with another split differently. Only the last part of a key (a reference
// ID, a send key) goes unescaped.
func escape(s string) string {
	if !strings.ContainsAny(s, "%:{}") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%', ':', '{', '}':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unixMS is how times are stored: milliseconds since the epoch.
func unixMS(t time.Time) int64 { return t.UnixMilli() }

// fromUnixMS turns a stored time back into a UTC time.Time.
func fromUnixMS(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
