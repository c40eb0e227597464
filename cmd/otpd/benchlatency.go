package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serverLatency is otpd's own latency for one operation during a run, as
// its /metrics histogram otpd_request_duration_seconds counts it: from the
// first byte of a request read to the last byte of the answer written.
// What the generator's percentiles add to it is the generator's own work,
// the kernel's and the wait for a core. The figures are bounds of the
// histogram's buckets: the median and 99 % of the requests took at most
// that long (0: longer than the last bound). Against --target, other
// clients' requests count too.
type serverLatency struct {
	Operation   string  `json:"operation"`
	Requests    int64   `json:"requests"`
	P50WithinMs float64 `json:"p50_within_ms"`
	P99WithinMs float64 `json:"p99_within_ms"`
}

func (l serverLatency) describe() string {
	within := func(ms float64) string {
		if ms == 0 {
			return "over the histogram's last bound"
		}
		return fmt.Sprintf("within %s ms", formatMs(ms))
	}
	return fmt.Sprintf("%d %s requests, the median %s, 99 %% %s", l.Requests, l.Operation, within(l.P50WithinMs), within(l.P99WithinMs))
}

// latencyCounts is a histogram: counts[i] holds the requests that took at
// most bounds[i] and longer than bounds[i-1]; counts' last element, one
// more than bounds has, those longer than every bound.
type latencyCounts struct {
	bounds []time.Duration
	counts []int64
}

// workloadOperations names the operations a workload calls.
func workloadOperations(workload string) []string {
	switch workload {
	case "send":
		return []string{"SendOTPMessage"}
	case "mix":
		return []string{"SendOTPMessage", "VerifyOTPMessage"}
	}
	return []string{"VerifyOTPMessage"}
}

// latencies returns otpd's request latency histograms by operation, or nil
// if its /metrics cannot be read; the first time, it says why.
func (b *bench) latencies(ctx context.Context) map[string]latencyCounts {
	if b.noLatencies {
		return nil
	}
	l, err := b.scrapeLatencies(ctx)
	if err != nil {
		b.noLatencies = true
		fmt.Fprintf(b.log, "otpd bench: otpd's own latency is not reported: %v\n", err)
		return nil
	}
	return l
}

// scrapeLatencies reads otpd's request latency histograms by operation
// from its /metrics.
func (b *bench) scrapeLatencies(ctx context.Context) (map[string]latencyCounts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.baseURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	family := families["otpd_request_duration_seconds"]
	if family == nil {
		return nil, errors.New("GET /metrics: no otpd_request_duration_seconds")
	}
	byOperation := map[string]latencyCounts{}
	for _, m := range family.GetMetric() {
		byOperation[labelValue(m, "operation")] = histogramCounts(m.GetHistogram())
	}
	return byOperation, nil
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// histogramCounts turns a Prometheus histogram's cumulative buckets into
// latencyCounts.
func histogramCounts(h *dto.Histogram) latencyCounts {
	var (
		c     latencyCounts
		below uint64
	)
	for _, b := range h.GetBucket() {
		if math.IsInf(b.GetUpperBound(), +1) {
			continue
		}
		c.bounds = append(c.bounds, time.Duration(b.GetUpperBound()*float64(time.Second)))
		c.counts = append(c.counts, int64(b.GetCumulativeCount()-below))
		below = b.GetCumulativeCount()
	}
	c.counts = append(c.counts, int64(h.GetSampleCount()-below))
	return c
}

// serverLatencies returns otpd's own latency for each of operations
// between two scrapes.
func serverLatencies(before, after map[string]latencyCounts, operations []string) []serverLatency {
	var out []serverLatency
	for _, op := range operations {
		a := after[op]
		var requests int64
		delta := make([]int64, len(a.counts))
		for i := range a.counts {
			delta[i] = a.counts[i]
			if b := before[op]; len(b.counts) == len(a.counts) {
				delta[i] -= b.counts[i]
			}
			requests += delta[i]
		}
		if requests == 0 {
			continue
		}
		l := serverLatency{Operation: op, Requests: requests}
		if bound, ok := boundOfPercentile(a.bounds, delta, 50); ok {
			l.P50WithinMs = ms(bound)
		}
		if bound, ok := boundOfPercentile(a.bounds, delta, 99); ok {
			l.P99WithinMs = ms(bound)
		}
		out = append(out, l)
	}
	return out
}

// boundOfPercentile returns the least of bounds (in increasing order)
// within which at least pct per cent of a histogram's counts fall, counts
// being as in latencyCounts, and false if none is.
func boundOfPercentile(bounds []time.Duration, counts []int64, pct int64) (time.Duration, bool) {
	var total, within int64
	for _, n := range counts {
		total += n
	}
	for i, bound := range bounds {
		within += counts[i]
		if within*100 >= total*pct {
			return bound, true
		}
	}
	return 0, false
}

// formatMs writes a bucket bound in milliseconds, as short as it is exact.
func formatMs(ms float64) string { return strconv.FormatFloat(ms, 'f', -1, 64) }
