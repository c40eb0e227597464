package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serverLatency is otpd's own latency for one operation during a run, from
// its /metrics histogram otpd_request_duration_seconds: the time inside
// otpd's handler, from its start (the request's headers read) to its end
// (the answer handed to net/http). Where the generator's percentiles are
// well above these, the time went elsewhere: reading the headers and
// writing the answer, the kernel, the generator, a wait for a core before
// the handler ran, or, in open loop, a wait behind an earlier answer on the
// same connection. Against --target, other clients' requests count too
// (and behind a load balancer, only one instance's).
type serverLatency struct {
	Operation string     `json:"operation"`
	Requests  int64      `json:"requests"`
	P50       percentile `json:"p50"`
	P99       percentile `json:"p99"`
}

func (l serverLatency) describe() string {
	return fmt.Sprintf("%d %s requests, %s, %s", l.Requests, l.Operation, l.P50.describe(), l.P99.describe())
}

// percentile is a percentile read off a histogram's buckets: the least
// bucket bound that at least Pct per cent of the counts kept within
// (WithinMs), or, if more than 100-Pct per cent took longer than every
// bound, the last bound (OverMs).
type percentile struct {
	Pct      int64   `json:"pct"`
	WithinMs float64 `json:"within_ms,omitempty"`
	OverMs   float64 `json:"over_ms,omitempty"`
}

func (p percentile) describe() string {
	if p.OverMs > 0 {
		return fmt.Sprintf("more than %d %% over %s ms", 100-p.Pct, formatMs(p.OverMs))
	}
	if p.Pct == 50 {
		return fmt.Sprintf("the median within %s ms", formatMs(p.WithinMs))
	}
	return fmt.Sprintf("%d %% within %s ms", p.Pct, formatMs(p.WithinMs))
}

// latencyCounts is a histogram: counts[i] holds what took at most
// bounds[i] (in increasing order) and longer than bounds[i-1]; counts'
// last element, one more than bounds has, what took longer than every
// bound.
type latencyCounts struct {
	bounds []time.Duration
	counts []int64
}

func (c latencyCounts) total() int64 {
	var n int64
	for _, k := range c.counts {
		n += k
	}
	return n
}

// since returns what c counted after earlier, a reading of the same
// histogram (the zero latencyCounts if the histogram did not exist yet),
// and false if the two cannot be the same histogram at two moments: other
// bounds, or a count that went down (the server restarted).
func (c latencyCounts) since(earlier latencyCounts) (latencyCounts, bool) {
	if earlier.counts == nil {
		return c, true
	}
	if !slices.Equal(c.bounds, earlier.bounds) || len(c.counts) != len(earlier.counts) {
		return latencyCounts{}, false
	}
	d := latencyCounts{bounds: c.bounds, counts: make([]int64, len(c.counts))}
	for i := range c.counts {
		if d.counts[i] = c.counts[i] - earlier.counts[i]; d.counts[i] < 0 {
			return latencyCounts{}, false
		}
	}
	return d, true
}

// percentile reads the pct-th percentile off c, which must count
// something.
func (c latencyCounts) percentile(pct int64) percentile {
	total, within := c.total(), int64(0)
	for i, bound := range c.bounds {
		within += c.counts[i]
		if within*100 >= total*pct {
			return percentile{Pct: pct, WithinMs: ms(bound)}
		}
	}
	return percentile{Pct: pct, OverMs: ms(c.bounds[len(c.bounds)-1])}
}

// workloadOperations names the operations a workload's measured requests
// call.
func workloadOperations(workload string) []string {
	switch workload {
	case "send":
		return []string{"SendOTPMessage"}
	case "verify", "verify-wrong":
		return []string{"VerifyOTPMessage"}
	case "mix":
		return []string{"SendOTPMessage", "VerifyOTPMessage"}
	}
	return nil
}

// latencies returns otpd's request latency histograms by operation, or nil
// if its /metrics cannot be read; the first time, it says why, and it does
// not try again.
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.client.Do(req)
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
	const name = "otpd_request_duration_seconds"
	family := families[name]
	if family == nil || family.GetType() != dto.MetricType_HISTOGRAM {
		return nil, errors.New("GET /metrics: no histogram " + name)
	}
	byOperation := map[string]latencyCounts{}
	for _, m := range family.GetMetric() {
		op := labelValue(m, "operation")
		c := histogramCounts(m.GetHistogram())
		if sum, ok := byOperation[op]; ok { // series that differ in other labels
			if !slices.Equal(sum.bounds, c.bounds) {
				return nil, fmt.Errorf("GET /metrics: %s{operation=%q} has series with different buckets", name, op)
			}
			for i := range c.counts {
				c.counts[i] += sum.counts[i]
			}
		}
		byOperation[op] = c
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
		c.bounds = append(c.bounds, time.Duration(math.Round(b.GetUpperBound()*float64(time.Second))))
		c.counts = append(c.counts, int64(b.GetCumulativeCount()-below))
		below = b.GetCumulativeCount()
	}
	c.counts = append(c.counts, int64(h.GetSampleCount()-below))
	return c
}

// serverLatencies returns otpd's own latency for each of operations
// between two scrapes, and the operations whose histograms cannot be
// compared (see latencyCounts.since).
func serverLatencies(before, after map[string]latencyCounts, operations []string) (figures []serverLatency, incomparable []string) {
	for _, op := range operations {
		run, ok := after[op].since(before[op])
		if !ok {
			incomparable = append(incomparable, op)
			continue
		}
		if run.total() == 0 || len(run.bounds) == 0 {
			continue
		}
		figures = append(figures, serverLatency{Operation: op, Requests: run.total(), P50: run.percentile(50), P99: run.percentile(99)})
	}
	return figures, incomparable
}
