// Package metrics defines otpd's Prometheus metrics, all in one place. No
// metric carries a code, a secret or a phone number.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/otpd/otpd/internal/otp"
	"github.com/otpd/otpd/internal/sms/route"
	"github.com/otpd/otpd/internal/storage"
)

// Metrics holds otpd's collectors, registered on their own registry.
type Metrics struct {
	registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	sends         *prometheus.CounterVec
	verifications *prometheus.CounterVec
	purged        prometheus.Counter
	attempts      *prometheus.CounterVec
	attemptTime   *prometheus.HistogramVec
	circuitOpen   *prometheus.GaugeVec
	linkUp        *prometheus.GaugeVec
	reports       *prometheus.CounterVec
	storeTime     *prometheus.HistogramVec
	storeFailures *prometheus.CounterVec
	signedBy      *prometheus.CounterVec
}

// New returns otpd's metrics on a new registry that also carries the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpd_requests_total",
			Help: "API requests by operation and HTTP status.",
		}, []string{"operation", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "otpd_request_duration_seconds",
			Help: "API request latency by operation: the time in otpd's handler, from the request's headers read to the answer handed to net/http.",
			// Up to 40 s: a send may spend 25 s (--send-timeout at
			// most) on carriers, then up to 10 s storing their answer.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 25, 40},
		}, []string{"operation"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpd_otp_sends_total",
			Help: "SendOTPMessage results by delivery status (SUCCESSFUL, TEMPORARY_FAILURE, ...).",
		}, []string{"delivery_status"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpd_otp_verifications_total",
			Help: "VerifyOTPMessage results by outcome (valid, wrong, expired, exhausted, consumed, unknown, throttled).",
		}, []string{"outcome"}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "otpd_purged_records_total",
			Help: "Expired codes and other records deleted by the background purge.",
		}),
	}
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "otpd_carrier_attempts_total",
		Help: "Attempts to hand a message to a carrier, by carrier and outcome (accepted, temporary, skipped-open-circuit, ...).",
	}, []string{"carrier", "outcome"})
	m.attemptTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "otpd_carrier_attempt_duration_seconds",
		Help: "How long carriers took to accept or refuse a message.",
		// Up to 25 s, --send-timeout at most, which bounds every attempt
		// whatever a carrier's own timeout.
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 25},
	}, []string{"carrier"})
	m.circuitOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "otpd_carrier_circuit_open",
		Help: "1 while a carrier's circuit breaker keeps it out of routing.",
	}, []string{"carrier"})
	m.linkUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "otpd_carrier_link_up",
		Help: "1 while a carrier that keeps a connection (SMPP) is bound, 0 while it is not: its sends fail over meanwhile.",
	}, []string{"carrier"})
	m.reports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "otpd_delivery_reports_total",
		Help: "Delivery reports from carriers, by carrier, status (DELIVERED, UNDELIVERED, FAILED, PENDING) and destination country.",
	}, []string{"carrier", "status", "country"})
	m.storeTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "otpd_store_call_duration_seconds",
		Help:    "Calls to the store (embedded, PostgreSQL or Redis) by method: the store's share of the requests' time, and the background purge's (Purge).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"method"})
	m.storeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "otpd_store_call_failures_total",
		Help: "Calls to the store that failed, by method (an answer such as not found is no failure).",
	}, []string{"method"})
	m.signedBy = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "otpd_access_key_requests_total",
		Help: "API requests whose signature was verified, by the access key that signed them: when rotating keys, the old key's rate falls to zero once no client uses it.",
	}, []string{"access_key_id"})
	m.registry.MustRegister(m.attempts, m.attemptTime, m.circuitOpen, m.linkUp, m.reports, m.storeTime, m.storeFailures, m.signedBy)
	m.registry.MustRegister(m.requests, m.latency, m.sends, m.verifications, m.purged,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	// Make every outcome and delivery status visible from the start, at
	// zero.
	for _, status := range otp.DeliveryStatuses() {
		m.sends.WithLabelValues(status)
	}
	for _, o := range storage.Outcomes() {
		m.verifications.WithLabelValues(string(o))
	}
	for _, method := range append(otp.StoreMethods(), purgeMethod) {
		m.storeFailures.WithLabelValues(method)
	}
	return m
}

// PoolStats is the state of a shared store's connection pool; see
// postgres.PoolStats, whose fields these are.
type PoolStats struct {
	Max, Acquired, Idle, Constructing int32
	Waits                             int64
	WaitTime                          time.Duration
	Opened                            int64
}

// WatchPool exports the connection pool of a PostgreSQL store, which stats
// reads at every scrape: its connections by state against its size, and
// the waits for a connection, which grow when the pool is too small for
// the load (--store's pool_max_conns). Call it once.
func (m *Metrics) WatchPool(stats func() PoolStats) {
	m.registry.MustRegister(poolCollector(stats))
}

// WatchAccessKeys exports the access key pairs otpd accepts, read at every
// scrape: how many (pairs), and, when they come from a file, whether the
// file can be used (fileHealthy; nil for a pair from the environment).
// Call it once.
func (m *Metrics) WatchAccessKeys(pairs func() int, fileHealthy func() bool) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "otpd_access_keys",
		Help: "Access key pairs that otpd accepts signatures from.",
	}, func() float64 { return float64(pairs()) }))
	if fileHealthy == nil {
		return
	}
	m.registry.MustRegister(flagGauge("otpd_access_keys_file_healthy",
		"1 while otpd's file of access keys can be used; 0 while it cannot be read, holds a mistake or keeps changing (the log says which), when otpd keeps accepting the keys it read before and takes no change from the file.",
		fileHealthy))
}

// WatchTLSCertificate exports the certificate otpd serves TLS with, read at
// every scrape: when it expires (notAfter), and whether its files can be
// used (filesHealthy). Call it once.
func (m *Metrics) WatchTLSCertificate(notAfter func() time.Time, filesHealthy func() bool) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "otpd_tls_certificate_expiry_timestamp_seconds",
		Help: "When the certificate otpd serves TLS with expires (its NotAfter), in seconds since the epoch: alert well before time() reaches it.",
	}, func() float64 { return float64(notAfter().Unix()) }))
	m.registry.MustRegister(flagGauge("otpd_tls_certificate_files_healthy",
		"1 while otpd's TLS certificate and key files can be used; 0 while they cannot be read, do not make a certificate and its key or keep changing (the log says which), when otpd keeps serving the certificate it read before.",
		filesHealthy))
}

// flagGauge is a gauge of 1 while flag reports true, else 0.
func flagGauge(name, help string, flag func() bool) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		if flag() {
			return 1
		}
		return 0
	})
}

// poolCollector is WatchPool's collector.
type poolCollector func() PoolStats

var poolDescs = struct{ conns, max, waits, waitTime, opened *prometheus.Desc }{
	prometheus.NewDesc("otpd_store_connections", "Connections of the store's pool by state (acquired, idle, constructing).", []string{"state"}, nil),
	prometheus.NewDesc("otpd_store_connections_max", "The most connections the store's pool may hold.", nil, nil),
	prometheus.NewDesc("otpd_store_connection_waits_total", "Calls that found no idle connection in the store's pool and waited for one.", nil, nil),
	prometheus.NewDesc("otpd_store_connection_wait_seconds_total", "Time calls spent waiting for a connection of the store's pool.", nil, nil),
	prometheus.NewDesc("otpd_store_connections_opened_total", "Connections the store's pool has opened.", nil, nil),
}

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s, d := c(), poolDescs
	for state, n := range map[string]int32{"acquired": s.Acquired, "idle": s.Idle, "constructing": s.Constructing} {
		ch <- prometheus.MustNewConstMetric(d.conns, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(d.max, prometheus.GaugeValue, float64(s.Max))
	ch <- prometheus.MustNewConstMetric(d.waits, prometheus.CounterValue, float64(s.Waits))
	ch <- prometheus.MustNewConstMetric(d.waitTime, prometheus.CounterValue, s.WaitTime.Seconds())
	ch <- prometheus.MustNewConstMetric(d.opened, prometheus.CounterValue, float64(s.Opened))
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Request counts one API request.
func (m *Metrics) Request(operation string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(operation, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(operation).Observe(elapsed.Seconds())
}

// SignedBy counts a request whose signature the access key accessKeyID
// proved: only a key otpd accepts, so the label's values are bounded by
// the keys it was given.
func (m *Metrics) SignedBy(accessKeyID string) { m.signedBy.WithLabelValues(accessKeyID).Inc() }

// Sent counts one send by its delivery status.
func (m *Metrics) Sent(deliveryStatus string) { m.sends.WithLabelValues(deliveryStatus).Inc() }

// Verified counts one verification by its outcome.
func (m *Metrics) Verified(o storage.Outcome) { m.verifications.WithLabelValues(string(o)).Inc() }

// Attempt counts one carrier attempt (it implements the carrier router's
// observer).
func (m *Metrics) Attempt(carrier, outcome string, elapsed time.Duration) {
	m.attempts.WithLabelValues(carrier, outcome).Inc()
	if elapsed > 0 {
		m.attemptTime.WithLabelValues(carrier).Observe(elapsed.Seconds())
	}
}

// BreakerState records whether a carrier's circuit is open (it implements
// the carrier router's observer). route.New reports every carrier closed,
// so this is also where a carrier's attempt metrics appear, at zero for
// every outcome, before its first attempt: a rate or an alert over them
// then sees the first failure too, instead of a series that starts with it.
func (m *Metrics) BreakerState(carrier string, open bool) {
	v := 0.0
	if open {
		v = 1
	}
	m.circuitOpen.WithLabelValues(carrier).Set(v)
	for _, o := range route.Outcomes() {
		m.attempts.WithLabelValues(carrier, o)
	}
	m.attemptTime.WithLabelValues(carrier)
}

// LinkState records whether a carrier that keeps a connection is bound.
func (m *Metrics) LinkState(carrier string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.linkUp.WithLabelValues(carrier).Set(v)
}

// Delivered counts one delivery report; country is the destination's ISO
// region ("" when it has none).
func (m *Metrics) Delivered(carrier, status, country string) {
	m.reports.WithLabelValues(carrier, status, country).Inc()
}

// StoreCall times one call of the store's method, and counts it if it
// failed.
func (m *Metrics) StoreCall(method string, elapsed time.Duration, failed bool) {
	m.storeTime.WithLabelValues(method).Observe(elapsed.Seconds())
	if failed {
		m.storeFailures.WithLabelValues(method).Inc()
	}
}

// purgeMethod is the method label of the background purge's store calls.
const purgeMethod = "Purge"

// Purged counts the records that one call of the store's Purge deleted, and
// times the call as a store call (see StoreCall). A call that failed may
// have deleted some first.
func (m *Metrics) Purged(n int, elapsed time.Duration, failed bool) {
	m.purged.Add(float64(n))
	m.StoreCall(purgeMethod, elapsed, failed)
}

// WriterStats is what the embedded store's writer has done since it opened;
// see sqlite.Stats, whose fields these are. FlushesWithin has one element
// more than the bounds given to WatchWriter: the flushes longer than all.
type WriterStats struct {
	Writes, Commits                 int64
	FlushesWithin                   []int64
	FlushTime                       time.Duration
	Checkpoints, CheckpointFailures int64
}

// WatchWriter exports the embedded store's writer counters, which stats
// reads at every scrape: how many writes share a commit and a flush of the
// log (group commit at work), how long the flushes take (the disk's health,
// which every write waits for: a histogram over flushBounds, whose sum over
// its count is the mean), and the background checkpoints, whose failures
// let the log grow. Call it once.
func (m *Metrics) WatchWriter(flushBounds []time.Duration, stats func() WriterStats) {
	m.registry.MustRegister(writerCollector{flushBounds, stats})
}

// writerCollector is WatchWriter's collector.
type writerCollector struct {
	flushBounds []time.Duration
	stats       func() WriterStats
}

var writerDescs = struct{ writes, commits, flushDuration, checkpoints, checkpointFailures *prometheus.Desc }{
	prometheus.NewDesc("otpd_store_writes_total", "Write operations the embedded store ran, failed ones included.", nil, nil),
	prometheus.NewDesc("otpd_store_commits_total", "Transactions the embedded store committed, each a group of writes.", nil, nil),
	prometheus.NewDesc("otpd_store_log_flush_duration_seconds", "Flushes (fdatasync) of the embedded store's write-ahead log by duration, each covering one or more commits.", nil, nil),
	prometheus.NewDesc("otpd_store_checkpoints_total", "Background checkpoints that copied the write-ahead log into the database file.", nil, nil),
	prometheus.NewDesc("otpd_store_checkpoint_failures_total", "Background checkpoints that failed (tried again after the next flush); while they fail, the log grows.", nil, nil),
}

func (c writerCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c writerCollector) Collect(ch chan<- prometheus.Metric) {
	s, d := c.stats(), writerDescs
	for desc, v := range map[*prometheus.Desc]float64{
		d.writes: float64(s.Writes), d.commits: float64(s.Commits),
		d.checkpoints: float64(s.Checkpoints), d.checkpointFailures: float64(s.CheckpointFailures),
	} {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v)
	}
	var flushes uint64
	buckets := make(map[float64]uint64, len(c.flushBounds))
	for i, n := range s.FlushesWithin {
		flushes += uint64(n)
		if i < len(c.flushBounds) {
			buckets[c.flushBounds[i].Seconds()] = flushes // cumulative, as Prometheus counts
		}
	}
	ch <- prometheus.MustNewConstHistogram(d.flushDuration, flushes, s.FlushTime.Seconds(), buckets)
}
