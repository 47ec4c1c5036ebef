package serve

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's series, on a registry of the server's own (never the process-wide
// default registry): its counters, histograms and gauges, and the Go runtime's and the
// process's standard collectors (go_*, process_*). /metrics serves them through
// promhttp, in the Prometheus text format (or another format the scraper asks for).
type metrics struct {
	registry *prometheus.Registry

	// requests counts finished requests by endpoint and status code; latency is their
	// duration by endpoint.
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// batchSize is the number of texts in each call of the model; batchSeconds its duration.
	batchSize    prometheus.Histogram
	batchSeconds prometheus.Histogram
	// texts counts the texts classified; errors counts failures by kind.
	texts  prometheus.Counter
	errors *prometheus.CounterVec
	// modelInfo has one series, of value 1, labelled with the model's name once it is set.
	modelInfo *prometheus.GaugeVec
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

// newMetrics registers the server's series; the gauges read ready, inFlight and queued at
// scrape time.
func newMetrics(ready func() bool, inFlight func() int64, queued func() int) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentibench_http_requests_total",
			Help: "HTTP requests served, by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sentibench_http_request_duration_seconds",
			Help:    "HTTP request duration in seconds, by endpoint.",
			Buckets: latencyBuckets,
		}, []string{"endpoint"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentibench_batch_size",
			Help:    "Texts per call of the model (micro-batches).",
			Buckets: batchSizeBuckets,
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sentibench_batch_duration_seconds",
			Help:    "Duration of each call of the model in seconds.",
			Buckets: latencyBuckets,
		}),
		texts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sentibench_texts_total",
			Help: "Texts classified.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sentibench_errors_total",
			Help: "Failed requests and model calls, by kind.",
		}, []string{"kind"}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sentibench_model_info",
			Help: "The model being served (always 1).",
		}, []string{"model"}),
	}
	// Every kind is served from the start, at 0, so that a rate over it has a beginning.
	for _, kind := range []string{errBadRequest, errModel, errTimeout, errOverloaded, errNotReady} {
		m.errors.WithLabelValues(kind)
	}
	m.registry.MustRegister(
		m.requests, m.latency, m.batchSize, m.batchSeconds, m.texts, m.errors, m.modelInfo,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sentibench_in_flight_requests",
			Help: "Prediction requests being served now.",
		}, func() float64 { return float64(inFlight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sentibench_queued_requests",
			Help: "Prediction requests waiting for the model.",
		}, func() float64 { return float64(queued()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sentibench_ready",
			Help: "1 when the model is loaded and the server is not shutting down.",
		}, func() float64 {
			if ready() {
				return 1
			}
			return 0
		}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) observeRequest(endpoint string, code int, d time.Duration) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(endpoint).Observe(d.Seconds())
}

func (m *metrics) observeBatch(size int, d time.Duration) {
	m.batchSize.Observe(float64(size))
	m.batchSeconds.Observe(d.Seconds())
	m.texts.Add(float64(size))
}

func (m *metrics) countError(kind string) { m.errors.WithLabelValues(kind).Inc() }

// setModel sets sentibench_model_info{model=name} to 1.
func (m *metrics) setModel(name string) { m.modelInfo.WithLabelValues(name).Set(1) }

// handler serves the registry; a failure to gather a series is logged, and the series that
// could be gathered are served (promhttp.ContinueOnError).
func (m *metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}
