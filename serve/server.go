package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sentibench/sentibench/train"
)

// Model classifies texts into its classes. The server calls Classify from one goroutine at a
// time. *train.Predictor is one (FromPredictor adds a word model's text check).
type Model interface {
	// Classify returns, for each text, its class and the probability of every class, in the
	// order of Classes.
	Classify(texts []string) ([]train.Classification, error)
	// Classes names the classes in id order (at least two; IMDB: neg, pos).
	Classes() []string
	// Name names the model (e.g. "cnn"); it appears in every answer.
	Name() string
}

// TextChecker is implemented by models that can tell in advance that they cannot classify a
// text (for a word model: a text without a single token). The server refuses such a text with
// 400 instead of sending it to the model.
type TextChecker interface {
	CheckText(text string) error
}

// Options tune the server. The zero value of each field means its default.
type Options struct {
	// MaxBatch is the most texts per call of the model (default 64); BatchWait the longest a
	// request waits for others to share its batch (default 2ms).
	MaxBatch  int
	BatchWait time.Duration
	// MaxQueue is the most requests waiting for the model; more are refused with 503
	// (default 1024).
	MaxQueue int
	// MaxBodyBytes limits a request body (default 1 MiB); MaxTexts the texts of one request
	// (default 256); MaxTextBytes one text (default 64 KiB, several times IMDB's longest review).
	MaxBodyBytes int64
	MaxTexts     int
	MaxTextBytes int
	// RequestTimeout is the deadline of one prediction request, queueing included (default 10s).
	RequestTimeout time.Duration
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the HTTP server's
	// (defaults 5s, 15s, RequestTimeout+5s, 60s).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ShutdownDelay is how long the server keeps serving, with /readyz not ready, after it is
	// told to stop, so that a load balancer takes it out of rotation first (default 0).
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds the wait for in-flight requests at shutdown (default 25s).
	ShutdownTimeout time.Duration
	// Logger receives the server's structured log: start, stop, one record per request
	// (debug level when it succeeded, warn when it failed) and the HTTP server's own errors
	// (default: none).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 64
	}
	def(&o.BatchWait, 2*time.Millisecond)
	if o.MaxQueue <= 0 {
		o.MaxQueue = 1024
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.MaxTexts <= 0 {
		o.MaxTexts = 256
	}
	if o.MaxTextBytes <= 0 {
		o.MaxTextBytes = 64 << 10
	}
	def(&o.RequestTimeout, 10*time.Second)
	def(&o.ReadHeaderTimeout, 5*time.Second)
	def(&o.ReadTimeout, 15*time.Second)
	def(&o.WriteTimeout, o.RequestTimeout+5*time.Second)
	def(&o.IdleTimeout, 60*time.Second)
	def(&o.ShutdownTimeout, 25*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Server serves one model over HTTP: the prediction API, the web page, health, readiness and
// metrics. Create it with New, give it its model with SetModel (it is not ready before), and
// serve with Run, or mount it as an http.Handler.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	page    page

	// pending counts prediction requests that have started but whose job the batcher has not
	// taken yet; inFlight counts prediction requests being served.
	pending  atomic.Int64
	inFlight atomic.Int64
	draining atomic.Bool

	mux *http.ServeMux

	mu      sync.Mutex
	batcher *batcher // nil until SetModel
}

// New returns a server without a model: it answers /healthz, and /readyz and the API with 503
// until SetModel.
func New(o Options) *Server {
	s := &Server{opts: o.withDefaults(), page: newPage()}
	s.log = s.opts.Logger
	s.metrics = newMetrics(s.Ready, s.inFlight.Load, s.queued)
	s.mux = s.routes()
	return s
}

// SetModel gives the server its model and starts the batching goroutine; from then on the
// server is ready. A server takes one model in its life.
func (s *Server) SetModel(m Model) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batcher != nil {
		return errors.New("serve: the server has a model already")
	}
	s.batcher = &batcher{
		model:    m,
		queue:    make(chan *job, s.opts.MaxQueue),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
		pending:  &s.pending,
		maxBatch: s.opts.MaxBatch,
		wait:     s.opts.BatchWait,
		metrics:  s.metrics,
		log:      s.log,
	}
	go s.batcher.loop()
	s.metrics.setModel(m.Name())
	s.log.Info("model loaded, ready", "model", m.Name())
	return nil
}

func (s *Server) currentBatcher() *batcher {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batcher
}

// Ready reports whether the server has its model and is not shutting down.
func (s *Server) Ready() bool { return s.currentBatcher() != nil && !s.draining.Load() }

// Run serves HTTP on ln until ctx is done, then shuts down gracefully: /readyz turns not ready,
// the server keeps serving for ShutdownDelay, then stops accepting connections, lets the
// requests in flight finish (up to ShutdownTimeout), stops the batcher and returns nil. It
// returns an error when serving fails or in-flight requests outlast ShutdownTimeout.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("listening", "url", "http://"+ln.Addr().String())
	select {
	case err := <-errc:
		s.stopBatcher()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("shutting down: not ready, serving shutdown_delay more, then finishing the requests in flight",
		"shutdown_delay", s.opts.ShutdownDelay.String(), "in_flight", s.inFlight.Load())
	if s.opts.ShutdownDelay > 0 {
		time.Sleep(s.opts.ShutdownDelay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	s.stopBatcher()
	if err != nil {
		hs.Close()
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	s.log.Info("stopped")
	return nil
}

// stopBatcher stops the batching goroutine and waits for it.
func (s *Server) stopBatcher() {
	s.draining.Store(true)
	if b := s.currentBatcher(); b != nil {
		select {
		case <-b.stop:
		default:
			close(b.stop)
		}
		<-b.stopped
	}
}

// routes registers the endpoints, each with its methods in the pattern (a GET pattern takes
// HEAD too): the mux answers a request for a known path with another method 405 and its Allow
// header, and an unknown path 404; ServeHTTP words both as JSON.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page.serve)
	mux.HandleFunc("POST /v1/predict", s.predict)
	mux.HandleFunc("GET /v1/predict", s.predict)
	mux.HandleFunc("GET /v1/model", s.modelInfo)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { s.ready(w) })
	mux.Handle("GET /metrics", s.metrics.handler(s.log))
	return mux
}

// ServeHTTP gives a request its ID, routes it, counts it under its endpoint's path ("other"
// for an unknown path) and logs it: at debug level when it succeeded, at warn when it failed.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusWriter{ResponseWriter: w}
	id, idErr := requestID(r.Header)
	rec.Header().Set(RequestIDHeader, id)
	info := &requestInfo{id: id}
	r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
	h, pattern := s.mux.Handler(r)
	var endpoint string
	switch {
	case idErr != nil:
		endpoint = "other"
		if pattern != "" {
			endpoint = endpointOf(pattern)
		}
		s.metrics.countError(errBadRequest)
		s.fail(rec, r, http.StatusBadRequest, "%v", idErr)
	case pattern != "":
		endpoint = endpointOf(pattern)
		h.ServeHTTP(rec, r)
	default:
		endpoint = s.refuse(rec, r, h)
	}
	d := time.Since(start)
	s.metrics.observeRequest(endpoint, rec.code(), d)
	s.logRequest(r, rec.code(), d, info)
}

// endpointOf is a route's path: "GET /healthz" -> "/healthz", "GET /{$}" -> "/".
func endpointOf(pattern string) string {
	_, endpoint, _ := strings.Cut(pattern, " ")
	return strings.TrimSuffix(endpoint, "{$}")
}

// logRequest writes a request's record: at debug level when it succeeded, at warn with the
// error when it did not (a status of 400 or more).
func (s *Server) logRequest(r *http.Request, code int, d time.Duration, info *requestInfo) {
	level := slog.LevelDebug
	if code >= http.StatusBadRequest {
		level = slog.LevelWarn
	}
	ctx := r.Context()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", code),
		slog.Float64("seconds", d.Seconds()),
		slog.Int("texts", info.texts),
		slog.String("request_id", info.id),
	}
	if info.err != "" {
		attrs = append(attrs, slog.String("error", info.err))
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// RequestIDHeader is the header that carries a request's ID, in the request (optional) and in
// every answer.
const RequestIDHeader = "X-Request-ID"

// MaxRequestIDLen is the longest X-Request-ID the server takes.
const MaxRequestIDLen = 128

// requestID returns the request's ID: the client's X-Request-ID when it is a sane one (1 to
// MaxRequestIDLen printable ASCII characters, given once), else a new random one (16 hex
// digits). A header that is given but not sane is an error, which the server answers with 400
// under a new ID: the client learns its ID was not taken, and the bad value (which may be
// kilobytes long, or hold control characters) is never written to the log or echoed back.
func requestID(h http.Header) (string, error) {
	values := h.Values(RequestIDHeader)
	switch {
	case len(values) == 0 || len(values) == 1 && values[0] == "":
		return newRequestID(), nil
	case len(values) > 1:
		return newRequestID(), fmt.Errorf("%s is given %d times: give it once", RequestIDHeader, len(values))
	}
	v := values[0]
	if len(v) > MaxRequestIDLen {
		return newRequestID(), fmt.Errorf("%s is %d bytes long: at most %d printable ASCII characters", RequestIDHeader, len(v), MaxRequestIDLen)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return newRequestID(), fmt.Errorf("%s has the byte 0x%02x at offset %d: want printable ASCII characters", RequestIDHeader, v[i], i)
		}
	}
	return v, nil
}

// newRequestID returns 16 random hex digits.
func newRequestID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// requestInfo is what the log record of a request gathers on the request's way: its ID, the
// number of texts it asked to classify and the error it was answered.
type requestInfo struct {
	id    string
	texts int
	err   string
}

type requestInfoKey struct{}

// infoOf returns the request's requestInfo (a new one for a request that did not come through
// ServeHTTP).
func infoOf(r *http.Request) *requestInfo {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// refuse answers a request that no route takes with the mux's own handler's status in a JSON
// error: 405 (a known path: the endpoint's name is returned) with the mux's Allow header, or
// 404. Anything else the mux answers (a redirect to the clean path) goes out as it is.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, muxAnswer http.Handler) (endpoint string) {
	answer := &recordedAnswer{header: http.Header{}}
	muxAnswer.ServeHTTP(answer, r)
	switch answer.code {
	case http.StatusMethodNotAllowed:
		allowed := answer.header.Get("Allow")
		w.Header().Set("Allow", allowed)
		s.fail(w, r, http.StatusMethodNotAllowed, "method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allowed)
		return r.URL.Path
	case http.StatusNotFound:
		s.fail(w, r, http.StatusNotFound, "no such page: %s (the API is POST or GET /v1/predict)", r.URL.Path)
	default:
		maps.Copy(w.Header(), answer.header)
		w.WriteHeader(answer.code)
		w.Write(answer.body.Bytes())
	}
	return "other"
}

// recordedAnswer keeps an answer (of the mux's own handlers) instead of sending it.
type recordedAnswer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (a *recordedAnswer) Header() http.Header { return a.header }

func (a *recordedAnswer) WriteHeader(code int) {
	if a.code == 0 {
		a.code = code
	}
}

func (a *recordedAnswer) Write(b []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.body.Write(b)
}

func (s *Server) ready(w http.ResponseWriter) {
	b := s.currentBatcher()
	switch {
	case b == nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "loading the model"})
	case s.draining.Load():
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "model": b.model.Name()})
	}
}

// queued is the number of requests waiting for the model.
func (s *Server) queued() int {
	if b := s.currentBatcher(); b != nil {
		return len(b.queue)
	}
	return 0
}

// PredictRequest is the body of POST /v1/predict. The body must be valid UTF-8, and so must
// each text of GET /v1/predict?text=...: a text that is not is refused with 400, as the data
// readers refuse it.
type PredictRequest struct {
	Texts []string `json:"texts"`
}

// Prediction is one text's answer (train.Classification.Verdict names its label and
// probability).
type Prediction struct {
	// Probability is a binary model's probability of its second class (the positive class,
	// IMDB: pos), and a model of K > 2 classes' probability of the predicted class.
	Probability float64 `json:"probability"`
	// Label is, for a binary sentiment model (train.SentimentClasses: neg/pos), Probability's
	// sentiment level among the six (Extremely Negative ... Extremely Positive); for any other
	// model, the predicted class.
	Label string `json:"label"`
	// Class is the predicted class, and Probabilities every class's probability by name, in
	// the model's class order.
	Class         string                   `json:"class"`
	Probabilities train.ClassProbabilities `json:"probabilities"`
}

// PredictResponse is the answer of /v1/predict: the model's name, its classes in id order,
// and one prediction per text, in the order of the texts.
type PredictResponse struct {
	Model       string       `json:"model"`
	Classes     []string     `json:"classes"`
	Predictions []Prediction `json:"predictions"`
}

// ModelInfo is the answer of GET /v1/model: the model's name and classes, and whether its
// predictions' labels are the six sentiment levels (a binary sentiment model) rather than its
// classes. The web page reads it to lay itself out.
type ModelInfo struct {
	Model           string   `json:"model"`
	Classes         []string `json:"classes"`
	SentimentLevels bool     `json:"sentiment_levels"`
}

// ErrorResponse is the body of every error answer: the error, and the request's ID (as in the
// X-Request-ID header of the answer and in the server's log).
type ErrorResponse struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

// predict serves POST /v1/predict ({"texts": [...]}) and GET (or HEAD) /v1/predict?text=...
func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	b := s.currentBatcher()
	if b == nil {
		s.metrics.countError(errNotReady)
		s.fail(w, r, http.StatusServiceUnavailable, "the model is not loaded yet")
		return
	}
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	s.pending.Add(1)
	queued := false
	defer func() {
		if !queued {
			s.pending.Add(-1)
		}
	}()

	texts, code, err := s.readTexts(w, r)
	infoOf(r).texts = len(texts)
	if err != nil {
		s.metrics.countError(errBadRequest)
		s.fail(w, r, code, "%v", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()
	j := &job{ctx: ctx, texts: texts, done: make(chan struct{})}
	select {
	case b.queue <- j:
		queued = true
	case <-b.stop:
		s.metrics.countError(errNotReady)
		s.fail(w, r, http.StatusServiceUnavailable, "%v", errStopped)
		return
	default:
		s.metrics.countError(errOverloaded)
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusServiceUnavailable, "overloaded: %d requests are waiting for the model", s.opts.MaxQueue)
		return
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		s.metrics.countError(errTimeout)
		s.fail(w, r, http.StatusGatewayTimeout, "no answer within %v", s.opts.RequestTimeout)
		return
	case <-b.stopped:
		select {
		case <-j.done:
		default:
			s.metrics.countError(errNotReady)
			s.fail(w, r, http.StatusServiceUnavailable, "%v", errStopped)
			return
		}
	}
	switch {
	case errors.Is(j.err, errStopped):
		s.metrics.countError(errNotReady)
		s.fail(w, r, http.StatusServiceUnavailable, "%v", j.err)
		return
	case errors.Is(j.err, context.DeadlineExceeded) || errors.Is(j.err, context.Canceled):
		s.metrics.countError(errTimeout)
		s.fail(w, r, http.StatusGatewayTimeout, "no answer within %v", s.opts.RequestTimeout)
		return
	case j.err != nil:
		s.fail(w, r, http.StatusInternalServerError, "%v", j.err)
		return
	}
	classes := b.model.Classes()
	resp := PredictResponse{Model: b.model.Name(), Classes: classes, Predictions: make([]Prediction, len(j.results))}
	for i, c := range j.results {
		label, prob := c.Verdict(classes)
		resp.Predictions[i] = Prediction{Probability: prob, Label: label, Class: c.Label, Probabilities: c.ByClass(classes)}
	}
	writeJSON(w, http.StatusOK, resp)
}

// modelInfo serves GET /v1/model.
func (s *Server) modelInfo(w http.ResponseWriter, r *http.Request) {
	b := s.currentBatcher()
	if b == nil {
		s.metrics.countError(errNotReady)
		s.fail(w, r, http.StatusServiceUnavailable, "the model is not loaded yet")
		return
	}
	classes := b.model.Classes()
	writeJSON(w, http.StatusOK, ModelInfo{Model: b.model.Name(), Classes: classes, SentimentLevels: train.SentimentClasses(classes)})
}

// readTexts reads and checks a request's texts; on failure it returns the status code to answer.
func (s *Server) readTexts(w http.ResponseWriter, r *http.Request) ([]string, int, error) {
	var texts []string
	if r.Method != http.MethodPost { // GET, or HEAD (a GET without the body)
		texts = r.URL.Query()["text"]
		if len(texts) == 0 {
			return nil, http.StatusBadRequest, errors.New("no text: use GET /v1/predict?text=... or POST /v1/predict with {\"texts\": [...]}")
		}
	} else {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the body is over %d bytes", s.opts.MaxBodyBytes)
		case err != nil:
			return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err)
		case !utf8.Valid(body):
			// JSON is UTF-8 (RFC 8259); the decoder would replace a bad byte by U+FFFD and
			// classify a text the client did not send. The data readers refuse it too.
			return nil, http.StatusBadRequest, fmt.Errorf("the body is %v", notUTF8(body))
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		var req PredictRequest
		err = dec.Decode(&req)
		if err == nil && dec.More() {
			err = errors.New("data after the JSON object")
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil, http.StatusBadRequest, errors.New(`empty body: want {"texts": ["a review", ...]}`)
		case err != nil:
			return nil, http.StatusBadRequest, fmt.Errorf(`bad JSON (want {"texts": ["a review", ...]}): %w`, err)
		}
		texts = req.Texts
		if len(texts) == 0 {
			return nil, http.StatusBadRequest, errors.New(`no texts: want {"texts": ["a review", ...]}`)
		}
	}
	if len(texts) > s.opts.MaxTexts {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("%d texts: at most %d per request", len(texts), s.opts.MaxTexts)
	}
	checker, _ := s.currentBatcher().model.(TextChecker)
	for i, t := range texts {
		if len(t) > s.opts.MaxTextBytes {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("text %d is %d bytes: at most %d", i, len(t), s.opts.MaxTextBytes)
		}
		if !utf8.ValidString(t) { // a GET's text: the query's %-escapes can make any bytes
			return nil, http.StatusBadRequest, fmt.Errorf("text %d is %v", i, notUTF8([]byte(t)))
		}
		if strings.TrimSpace(t) == "" {
			return nil, http.StatusBadRequest, fmt.Errorf("text %d is empty", i)
		}
		if checker != nil {
			if err := checker.CheckText(t); err != nil {
				return nil, http.StatusBadRequest, fmt.Errorf("text %d: %w", i, err)
			}
		}
	}
	return texts, 0, nil
}

// notUTF8 says where b stops being UTF-8, as the data readers do.
func notUTF8(b []byte) error {
	off := 0
	for off < len(b) {
		r, size := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		off += size
	}
	if off == len(b) {
		return errors.New("valid UTF-8")
	}
	return fmt.Errorf("not valid UTF-8 (byte 0x%02x at offset %d)", b[off], off)
}

// fail answers an error as JSON, with the request's ID, and keeps the message for the
// request's log record.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, format string, a ...any) {
	info := infoOf(r)
	info.err = fmt.Sprintf(format, a...)
	writeJSON(w, code, ErrorResponse{Error: info.err, RequestID: info.id})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // the answer types always marshal; keep the client informed anyway
		code, body = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}

// statusWriter remembers the status code of an answer, for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
