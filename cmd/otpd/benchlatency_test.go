package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

var testBounds = []time.Duration{time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond}

func TestPercentile(t *testing.T) {
	for _, c := range []struct {
		counts []int64
		pct    int64
		want   percentile
		says   string
	}{
		{[]int64{50, 48, 1, 1}, 50, percentile{Pct: 50, WithinMs: 1}, "the median within 1 ms"},
		{[]int64{50, 48, 1, 1}, 98, percentile{Pct: 98, WithinMs: 5}, "98 % within 5 ms"},
		{[]int64{50, 48, 1, 1}, 99, percentile{Pct: 99, WithinMs: 10}, "99 % within 10 ms"},
		{[]int64{49, 51, 0, 0}, 50, percentile{Pct: 50, WithinMs: 5}, "the median within 5 ms"},
		{[]int64{90, 9, 1, 0}, 99, percentile{Pct: 99, WithinMs: 5}, "99 % within 5 ms"}, // exactly 99 %
		{[]int64{90, 8, 0, 2}, 99, percentile{Pct: 99, OverMs: 10}, "more than 1 % over 10 ms"},
		{[]int64{40, 0, 0, 60}, 50, percentile{Pct: 50, OverMs: 10}, "more than 50 % over 10 ms"},
	} {
		got := latencyCounts{testBounds, c.counts}.percentile(c.pct)
		if got != c.want || got.describe() != c.says {
			t.Errorf("percentile %d of %v = %+v (%q), want %+v (%q)", c.pct, c.counts, got, got.describe(), c.want, c.says)
		}
	}
}

func TestLatencyCountsSince(t *testing.T) {
	before := latencyCounts{testBounds, []int64{10, 5, 0, 1}}
	if d, ok := (latencyCounts{testBounds, []int64{15, 5, 2, 1}}).since(before); !ok || !slices.Equal(d.counts, []int64{5, 0, 2, 0}) {
		t.Errorf("since = %v, %v; want [5 0 2 0]", d.counts, ok)
	}
	if d, ok := before.since(latencyCounts{}); !ok || !slices.Equal(d.counts, before.counts) {
		t.Errorf("since nothing = %v, %v; want the whole histogram", d.counts, ok)
	}
	if _, ok := (latencyCounts{testBounds, []int64{3, 0, 0, 0}}).since(before); ok {
		t.Error("counts that went down (a restart) compared")
	}
	other := []time.Duration{time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond}
	if _, ok := (latencyCounts{other, []int64{20, 5, 0, 1}}).since(before); ok {
		t.Error("histograms with other bounds compared")
	}
}

func TestHistogramCounts(t *testing.T) {
	bucket := func(le float64, n uint64) *dto.Bucket { return &dto.Bucket{UpperBound: &le, CumulativeCount: &n} }
	count := uint64(12)
	h := &dto.Histogram{SampleCount: &count, Bucket: []*dto.Bucket{
		bucket(0.0005, 2), bucket(0.001, 7), bucket(0.0025, 7), bucket(math.Inf(+1), 12),
	}}
	c := histogramCounts(h)
	wantBounds := []time.Duration{500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond}
	if !slices.Equal(c.bounds, wantBounds) || !slices.Equal(c.counts, []int64{2, 5, 0, 5}) {
		t.Errorf("histogramCounts = %v %v, want %v [2 5 0 5]", c.bounds, c.counts, wantBounds)
	}
}

func TestWorkloadOperations(t *testing.T) {
	for workload, want := range map[string][]string{
		"send":         {"SendOTPMessage"},
		"verify":       {"VerifyOTPMessage"},
		"verify-wrong": {"VerifyOTPMessage"},
		"mix":          {"SendOTPMessage", "VerifyOTPMessage"},
		"unknown":      nil,
	} {
		if got := workloadOperations(workload); !slices.Equal(got, want) {
			t.Errorf("workloadOperations(%s) = %v, want %v", workload, got, want)
		}
	}
}

// serverLatencies counts what happened between two scrapes, for the
// workload's operations only; it leaves out an operation with none, and
// names one whose histogram cannot be compared.
func TestServerLatencies(t *testing.T) {
	before := map[string]latencyCounts{
		"VerifyOTPMessage": {testBounds, []int64{1000, 10, 0, 0}},
		"SendOTPMessage":   {testBounds, []int64{5, 0, 0, 0}},
	}
	after := map[string]latencyCounts{
		"VerifyOTPMessage": {testBounds, []int64{1050, 58, 1, 1}}, // 50, 48, 1 and 1 more
		"SendOTPMessage":   {testBounds, []int64{5, 0, 0, 0}},     // none
		"CreateApp":        {testBounds, []int64{1, 0, 0, 0}},     // not the workload's
	}
	got, incomparable := serverLatencies(before, after, []string{"SendOTPMessage", "VerifyOTPMessage"})
	want := []serverLatency{{Operation: "VerifyOTPMessage", Requests: 100, P50: percentile{Pct: 50, WithinMs: 1}, P99: percentile{Pct: 99, WithinMs: 10}}}
	if !slices.Equal(got, want) || incomparable != nil {
		t.Fatalf("serverLatencies = %+v, %v; want %+v", got, incomparable, want)
	}
	if line := got[0].describe(); line != "100 VerifyOTPMessage requests, the median within 1 ms, 99 % within 10 ms" {
		t.Errorf("describe = %q", line)
	}
	// A histogram with no bounds but +Inf gives no figure.
	onlyInf := map[string]latencyCounts{"VerifyOTPMessage": {nil, []int64{7}}}
	if got, _ := serverLatencies(map[string]latencyCounts{}, onlyInf, []string{"VerifyOTPMessage"}); got != nil {
		t.Errorf("a histogram without bounds: %+v, want no figure", got)
	}
	// The server restarted between the scrapes.
	after["SendOTPMessage"] = latencyCounts{testBounds, []int64{2, 0, 0, 0}}
	if _, incomparable := serverLatencies(before, after, []string{"SendOTPMessage"}); !slices.Equal(incomparable, []string{"SendOTPMessage"}) {
		t.Errorf("after a restart: incomparable %v, want SendOTPMessage", incomparable)
	}
}

// scrapeLatencies reads the histogram from a real /metrics answer, sums
// series that differ in other labels, and refuses what is not otpd's
// histogram; latencies then stops trying, having said why once.
func TestScrapeLatencies(t *testing.T) {
	metrics := `# TYPE otpd_request_duration_seconds histogram
otpd_request_duration_seconds_bucket{operation="VerifyOTPMessage",le="0.001"} 3
otpd_request_duration_seconds_bucket{operation="VerifyOTPMessage",le="0.005"} 4
otpd_request_duration_seconds_bucket{operation="VerifyOTPMessage",le="+Inf"} 5
otpd_request_duration_seconds_sum{operation="VerifyOTPMessage"} 0.5
otpd_request_duration_seconds_count{operation="VerifyOTPMessage"} 5
otpd_request_duration_seconds_bucket{operation="VerifyOTPMessage",shard="b",le="0.001"} 1
otpd_request_duration_seconds_bucket{operation="VerifyOTPMessage",shard="b",le="0.005"} 1
otpd_request_duration_seconds_bucket{operation="VerifyOTPMessage",shard="b",le="+Inf"} 1
otpd_request_duration_seconds_sum{operation="VerifyOTPMessage",shard="b"} 0.001
otpd_request_duration_seconds_count{operation="VerifyOTPMessage",shard="b"} 1
`
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, metrics)
	}))
	defer srv.Close()
	var log bytes.Buffer
	b := &bench{baseURL: srv.URL, metricsURL: srv.URL + "/metrics", client: srv.Client(), log: &log}
	got, err := b.scrapeLatencies(context.Background())
	want := latencyCounts{[]time.Duration{time.Millisecond, 5 * time.Millisecond}, []int64{4, 1, 1}}
	if v := got["VerifyOTPMessage"]; err != nil || !slices.Equal(v.bounds, want.bounds) || !slices.Equal(v.counts, want.counts) {
		t.Fatalf("scrapeLatencies = %+v, %v; want VerifyOTPMessage %+v", got, err, want)
	}
	// A target whose /metrics is on its --metrics-addr: --metrics-url.
	elsewhere := &bench{baseURL: "http://127.0.0.1:1", metricsURL: srv.URL + "/metrics", client: srv.Client(), log: &log}
	if got, err := elsewhere.scrapeLatencies(context.Background()); err != nil || got["VerifyOTPMessage"].counts == nil {
		t.Fatalf("scrapeLatencies at --metrics-url = %+v, %v; want VerifyOTPMessage's", got, err)
	}

	for name, c := range map[string]struct {
		status int
		body   string
		err    string
	}{
		"not found":    {http.StatusNotFound, metrics, "404"},
		"no histogram": {http.StatusOK, "# TYPE other counter\nother 1\n", "no histogram otpd_request_duration_seconds"},
		"series of one operation with other buckets": {http.StatusOK, `# TYPE otpd_request_duration_seconds histogram
otpd_request_duration_seconds_bucket{operation="V",le="0.001"} 1
otpd_request_duration_seconds_bucket{operation="V",le="+Inf"} 1
otpd_request_duration_seconds_count{operation="V"} 1
otpd_request_duration_seconds_bucket{operation="V",shard="b",le="0.002"} 1
otpd_request_duration_seconds_bucket{operation="V",shard="b",le="+Inf"} 1
otpd_request_duration_seconds_count{operation="V",shard="b"} 1
`, "different buckets"},
		"not a histogram": {http.StatusOK, "# TYPE otpd_request_duration_seconds summary\notpd_request_duration_seconds_sum 1\notpd_request_duration_seconds_count 1\n", "no histogram"},
	} {
		status, metrics = c.status, c.body
		if _, err := b.scrapeLatencies(context.Background()); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %v, want one naming %q", name, err, c.err)
		}
	}
	if b.latencies(context.Background()) != nil || !b.noLatencies || !strings.Contains(log.String(), "otpd's own latency is not reported") {
		t.Errorf("after a failed scrape: noLatencies %v, log %q", b.noLatencies, log.String())
	}
	status, metrics = http.StatusOK, "# TYPE otpd_request_duration_seconds histogram\n"
	if b.latencies(context.Background()) != nil || strings.Count(log.String(), "not reported") != 1 {
		t.Errorf("latencies tried again after a failure: log %q", log.String())
	}
}
