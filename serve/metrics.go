package serve

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// metrics are the server's counters and histograms. It writes them in the Prometheus text
// exposition format (version 0.0.4), which is a few lines of code for the handful of series
// served here, so no client library is needed.
type metrics struct {
	mu sync.Mutex
	// requests counts finished requests by endpoint and status code.
	requests map[requestKey]uint64
	// latency is the request duration by endpoint.
	latency map[string]*histogram
	// batchSize is the number of texts in each call of the model; batchSeconds its duration.
	batchSize    *histogram
	batchSeconds *histogram
	// texts counts the texts classified; errors counts failures by kind.
	texts  uint64
	errors map[string]uint64
}

type requestKey struct {
	endpoint string
	code     int
}

// The kinds of errors counted by sentibench_errors_total.
const (
	errBadRequest = "bad_request" // the client's request was refused (4xx)
	errModel      = "model"       // the model failed on a batch
	errTimeout    = "timeout"     // the per-request deadline passed
	errOverloaded = "overloaded"  // the queue was full
	errNotReady   = "not_ready"   // no model yet, or shut down
)

// latencyBuckets are the request duration buckets in seconds (1 ms to 10 s).
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// batchSizeBuckets are the batch size buckets (texts per model call).
var batchSizeBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}

func newMetrics() *metrics {
	return &metrics{
		requests:     map[requestKey]uint64{},
		latency:      map[string]*histogram{},
		batchSize:    newHistogram(batchSizeBuckets),
		batchSeconds: newHistogram(latencyBuckets),
		errors: map[string]uint64{
			errBadRequest: 0, errModel: 0, errTimeout: 0, errOverloaded: 0, errNotReady: 0,
		},
	}
}

func (m *metrics) observeRequest(endpoint string, code int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[requestKey{endpoint, code}]++
	h := m.latency[endpoint]
	if h == nil {
		h = newHistogram(latencyBuckets)
		m.latency[endpoint] = h
	}
	h.observe(d.Seconds())
}

func (m *metrics) observeBatch(size int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batchSize.observe(float64(size))
	m.batchSeconds.observe(d.Seconds())
	m.texts += uint64(size)
}

func (m *metrics) countError(kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errors[kind]++
}

// gauges are the values read at scrape time.
type gauges struct {
	model    string
	ready    bool
	inFlight int64
	queued   int
}

// write writes every series in the text exposition format.
func (m *metrics) write(w io.Writer, g gauges) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder

	header(&b, "sentibench_http_requests_total", "counter", "HTTP requests served, by endpoint and status code.")
	keys := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b requestKey) int {
		if c := strings.Compare(a.endpoint, b.endpoint); c != 0 {
			return c
		}
		return a.code - b.code
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "sentibench_http_requests_total{endpoint=%s,code=\"%d\"} %d\n", quote(k.endpoint), k.code, m.requests[k])
	}

	header(&b, "sentibench_http_request_duration_seconds", "histogram", "HTTP request duration in seconds, by endpoint.")
	endpoints := make([]string, 0, len(m.latency))
	for e := range m.latency {
		endpoints = append(endpoints, e)
	}
	slices.Sort(endpoints)
	for _, e := range endpoints {
		m.latency[e].write(&b, "sentibench_http_request_duration_seconds", "endpoint="+quote(e))
	}

	header(&b, "sentibench_batch_size", "histogram", "Texts per call of the model (micro-batches).")
	m.batchSize.write(&b, "sentibench_batch_size", "")
	header(&b, "sentibench_batch_duration_seconds", "histogram", "Duration of each call of the model in seconds.")
	m.batchSeconds.write(&b, "sentibench_batch_duration_seconds", "")

	header(&b, "sentibench_texts_total", "counter", "Texts classified.")
	fmt.Fprintf(&b, "sentibench_texts_total %d\n", m.texts)

	header(&b, "sentibench_errors_total", "counter", "Failed requests and model calls, by kind.")
	kinds := make([]string, 0, len(m.errors))
	for k := range m.errors {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "sentibench_errors_total{kind=%s} %d\n", quote(k), m.errors[k])
	}

	header(&b, "sentibench_in_flight_requests", "gauge", "Prediction requests being served now.")
	fmt.Fprintf(&b, "sentibench_in_flight_requests %d\n", g.inFlight)
	header(&b, "sentibench_queued_requests", "gauge", "Prediction requests waiting for the model.")
	fmt.Fprintf(&b, "sentibench_queued_requests %d\n", g.queued)
	header(&b, "sentibench_ready", "gauge", "1 when the model is loaded and the server is not shutting down.")
	ready := 0
	if g.ready {
		ready = 1
	}
	fmt.Fprintf(&b, "sentibench_ready %d\n", ready)
	if g.model != "" {
		header(&b, "sentibench_model_info", "gauge", "The model being served (always 1).")
		fmt.Fprintf(&b, "sentibench_model_info{model=%s} 1\n", quote(g.model))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func header(b *strings.Builder, name, typ, help string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// quote writes a label value as the exposition format wants it: in double quotes, with
// backslash, double quote and line feed escaped.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// histogram counts observations into buckets with fixed upper bounds.
type histogram struct {
	bounds []float64
	counts []uint64 // counts[i]: observations in (bounds[i-1], bounds[i]]; the last is +Inf
	sum    float64
	n      uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v) // the first bound >= v
	h.counts[i]++
	h.sum += v
	h.n++
}

// write writes the cumulative buckets, the sum and the count; labels (may be empty) come first
// in every series' label set.
func (h *histogram) write(b *strings.Builder, name, labels string) {
	sep := ""
	if labels != "" {
		sep = ","
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		le := "+Inf"
		if i < len(h.bounds) {
			le = formatFloat(h.bounds[i])
		}
		fmt.Fprintf(b, "%s_bucket{%s%sle=\"%s\"} %d\n", name, labels, sep, le, cum)
	}
	braces := ""
	if labels != "" {
		braces = "{" + labels + "}"
	}
	fmt.Fprintf(b, "%s_sum%s %s\n", name, braces, formatFloat(h.sum))
	fmt.Fprintf(b, "%s_count%s %d\n", name, braces, h.n)
}

func formatFloat(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
