package metrics

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/otpd/otpd/internal/otp"
	"github.com/otpd/otpd/internal/sms"
	"github.com/otpd/otpd/internal/sms/route"
	"github.com/otpd/otpd/internal/storage"
)

// The writer's flushes come out as a Prometheus histogram: cumulative
// buckets at the bounds given, the flushes over every bound in the count
// only, and the time they took as the sum.
func TestWriterFlushHistogram(t *testing.T) {
	m := New()
	bounds := []time.Duration{100 * time.Microsecond, time.Millisecond, 10 * time.Millisecond}
	m.WatchWriter(bounds, func() WriterStats {
		return WriterStats{Writes: 40, Commits: 20, FlushesWithin: []int64{3, 0, 5, 2}, FlushTime: 90 * time.Millisecond}
	})
	h := family(t, m, "otpd_store_log_flush_duration_seconds").GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 10 || h.GetSampleSum() != 0.09 {
		t.Errorf("count %d, sum %v: want 10 flushes in 0.09 s", h.GetSampleCount(), h.GetSampleSum())
	}
	want := []struct {
		le    float64
		count uint64
	}{{0.0001, 3}, {0.001, 3}, {0.01, 8}}
	got := h.GetBucket()
	if len(got) != len(want) {
		t.Fatalf("%d buckets, want %d: %v", len(got), len(want), got)
	}
	for i, b := range got {
		if b.GetUpperBound() != want[i].le || b.GetCumulativeCount() != want[i].count {
			t.Errorf("bucket %d: le %v count %d, want le %v count %d", i, b.GetUpperBound(), b.GetCumulativeCount(), want[i].le, want[i].count)
		}
	}
}

// A carrier's attempt counters exist from the router's first report of it,
// at zero for every outcome, so that a rate over them sees its first
// failure; the counts then go up one outcome at a time.
func TestCarrierMetricsFromTheStart(t *testing.T) {
	m := New()
	if _, err := route.New(route.Config{Carriers: []route.Carrier{{Carrier: namedCarrier("sms-a")}}, Rules: []route.Rule{{Carriers: []string{"sms-a"}}}, Observer: m}); err != nil {
		t.Fatal(err)
	}
	attempts := func() map[string]float64 {
		t.Helper()
		got := map[string]float64{}
		for _, metric := range family(t, m, "otpd_carrier_attempts_total").GetMetric() {
			labels := map[string]string{}
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["carrier"] != "sms-a" {
				t.Errorf("a series for carrier %q, which was never reported", labels["carrier"])
			}
			got[labels["outcome"]] = metric.GetCounter().GetValue()
		}
		return got
	}
	got := attempts()
	if len(got) != len(route.Outcomes()) {
		t.Errorf("%d outcomes shown, want the %d of route.Outcomes: %v", len(got), len(route.Outcomes()), got)
	}
	for _, o := range route.Outcomes() {
		if v, ok := got[o]; !ok || v != 0 {
			t.Errorf("outcome %q: %v (shown: %v), want 0", o, v, ok)
		}
	}
	if h := family(t, m, "otpd_carrier_attempt_duration_seconds").GetMetric(); len(h) != 1 || h[0].GetHistogram().GetSampleCount() != 0 {
		t.Errorf("attempt durations: %v, want one empty histogram", h)
	}

	m.Attempt("sms-a", route.OutcomeTemporary, 5*time.Millisecond)
	got = attempts()
	for _, o := range route.Outcomes() {
		want := 0.0
		if o == route.OutcomeTemporary {
			want = 1
		}
		if got[o] != want {
			t.Errorf("after one temporary failure, outcome %q: %v, want %v", o, got[o], want)
		}
	}
}

// Every delivery status of a send and every outcome of a verification is
// shown from the start, at zero.
func TestSendsAndVerificationsFromTheStart(t *testing.T) {
	m := New()
	m.Sent(otp.StatusSuccessful)
	m.Verified(storage.OutcomeWrong)
	for _, c := range []struct {
		name, label string
		want        []string
		counted     string
	}{
		{"otpd_otp_sends_total", "delivery_status", otp.DeliveryStatuses(), otp.StatusSuccessful},
		{"otpd_otp_verifications_total", "outcome", []string{"valid", "wrong", "expired", "exhausted", "consumed", "unknown", "throttled"}, "wrong"}, // as the README lists them
	} {
		got := map[string]float64{}
		for _, metric := range family(t, m, c.name).GetMetric() {
			got[metric.GetLabel()[0].GetValue()] = metric.GetCounter().GetValue()
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: %v, want the %d values %v", c.name, got, len(c.want), c.want)
		}
		for _, v := range c.want {
			want := 0.0
			if v == c.counted {
				want = 1
			}
			if n, ok := got[v]; !ok || n != want {
				t.Errorf("%s{%s=%q} = %v (shown: %v), want %v", c.name, c.label, v, n, ok, want)
			}
		}
	}
}

// family returns the metric family called name, failing the test if there
// is none.
func family(t *testing.T, m *Metrics, name string) *dto.MetricFamily {
	t.Helper()
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("no %s", name)
	return nil
}

// namedCarrier is a carrier that only has a name: route.New needs no more.
type namedCarrier string

func (c namedCarrier) Name() string { return string(c) }

func (c namedCarrier) Send(context.Context, sms.Message) (sms.Receipt, error) {
	return sms.Receipt{}, errors.New("not for sending")
}

// go_build_info tells which build serves: the module's version, and the
// Go that built it in the runtime collector's go_info.
func TestBuildInfo(t *testing.T) {
	m := New()
	f := family(t, m, "go_build_info")
	labels := map[string]string{}
	for _, l := range f.GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] == "" || f.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Errorf("go_build_info %v = %v, want 1 with a version", labels, f.GetMetric()[0].GetGauge().GetValue())
	}
	family(t, m, "go_info")
}

// The store's calls are timed by method, and their failures counted, every
// method the service calls, and the background purge's, showing from the
// start.
func TestStoreCalls(t *testing.T) {
	m := New()
	m.StoreCall("VerifyCode", 2*time.Millisecond, false)
	m.StoreCall("VerifyCode", 3*time.Second, true)
	failures := map[string]float64{}
	for _, metric := range family(t, m, "otpd_store_call_failures_total").GetMetric() {
		failures[metric.GetLabel()[0].GetValue()] = metric.GetCounter().GetValue()
	}
	for _, method := range append(otp.StoreMethods(), "Purge") {
		want := 0.0
		if method == "VerifyCode" {
			want = 1
		}
		if n, ok := failures[method]; !ok || n != want {
			t.Errorf("otpd_store_call_failures_total{method=%q} = %v (shown: %v), want %v", method, n, ok, want)
		}
	}
	h := family(t, m, "otpd_store_call_duration_seconds").GetMetric()
	if len(h) != 1 || h[0].GetLabel()[0].GetValue() != "VerifyCode" || h[0].GetHistogram().GetSampleCount() != 2 ||
		h[0].GetHistogram().GetSampleSum() != 3.002 {
		t.Errorf("otpd_store_call_duration_seconds = %v, want VerifyCode's two calls, 3.002 s in all", h)
	}
}

// The background purge counts what it deleted, even in a call that then
// failed, and is timed as a store call.
func TestPurged(t *testing.T) {
	m := New()
	m.Purged(250, 4*time.Millisecond, false)
	m.Purged(7, time.Second, true)
	if n := family(t, m, "otpd_purged_records_total").GetMetric()[0].GetCounter().GetValue(); n != 257 {
		t.Errorf("otpd_purged_records_total = %v, want 257", n)
	}
	for _, metric := range family(t, m, "otpd_store_call_failures_total").GetMetric() {
		if metric.GetLabel()[0].GetValue() == "Purge" && metric.GetCounter().GetValue() != 1 {
			t.Errorf("otpd_store_call_failures_total{method=\"Purge\"} = %v, want 1", metric.GetCounter().GetValue())
		}
	}
	h := family(t, m, "otpd_store_call_duration_seconds").GetMetric()
	if len(h) != 1 || h[0].GetLabel()[0].GetValue() != "Purge" || h[0].GetHistogram().GetSampleCount() != 2 {
		t.Errorf("otpd_store_call_duration_seconds = %v, want Purge's two calls", h)
	}
}

// A PostgreSQL store's pool is read at every scrape.
func TestPoolMetrics(t *testing.T) {
	m := New()
	m.WatchPool(func() PoolStats {
		return PoolStats{Max: 16, Acquired: 3, Idle: 5, Constructing: 1, Waits: 7, WaitTime: 1500 * time.Millisecond, Opened: 9}
	})
	conns := map[string]float64{}
	for _, metric := range family(t, m, "otpd_store_connections").GetMetric() {
		conns[metric.GetLabel()[0].GetValue()] = metric.GetGauge().GetValue()
	}
	if want := map[string]float64{"acquired": 3, "idle": 5, "constructing": 1}; !maps.Equal(conns, want) {
		t.Errorf("otpd_store_connections = %v, want %v", conns, want)
	}
	for name, want := range map[string]float64{
		"otpd_store_connections_max": 16, "otpd_store_connection_waits_total": 7,
		"otpd_store_connection_wait_seconds_total": 1.5, "otpd_store_connections_opened_total": 9,
	} {
		metric := family(t, m, name).GetMetric()[0]
		if got := metric.GetGauge().GetValue() + metric.GetCounter().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// A send at its slowest (25 s on carriers, then storing their answer) and
// an attempt as long as --send-timeout allows each fall in a bucket of
// their own, not only in +Inf, so that a quantile over them says how slow.
func TestDurationBucketsCoverTheLongestSend(t *testing.T) {
	m := New()
	m.Request("SendOTPMessage", 200, 34*time.Second)
	m.Request("SendOTPMessage", 200, 36*time.Second)
	m.Attempt("sms-a", "temporary", 20*time.Second)
	m.Attempt("sms-a", "temporary", 24*time.Second)
	for _, name := range []string{"otpd_request_duration_seconds", "otpd_carrier_attempt_duration_seconds"} {
		h := family(t, m, name).GetMetric()[0].GetHistogram()
		buckets := h.GetBucket()
		last := buckets[len(buckets)-1]
		if last.GetCumulativeCount() != 2 || len(buckets) < 2 || buckets[len(buckets)-2].GetCumulativeCount() != 0 {
			t.Errorf("%s: buckets %v, want the largest finite one to hold both, and the one below neither", name, buckets)
		}
	}
}
