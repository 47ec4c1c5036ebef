package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentibench/sentibench/train"
)

// fakeModel is a binary neg/pos model that reads each text as its positive class's probability
// ("0.73" -> 0.73; anything else 0.5), so the tests can tell whether answers reach the right
// request in the right order. The text "fail" makes the call fail, "panic" makes it panic, and
// "three" gets three classes' probabilities. Calls can be held (gate) and slowed.
type fakeModel struct {
	delay   time.Duration
	gate    chan struct{} // when not nil, each call waits for a value
	entered chan struct{} // when not nil, each call sends on it first

	mu    sync.Mutex
	sizes []int
}

func (m *fakeModel) Name() string { return "fake" }

func (m *fakeModel) Classes() []string { return []string{"neg", "pos"} }

func (m *fakeModel) Classify(texts []string) ([]train.Classification, error) {
	if m.entered != nil {
		m.entered <- struct{}{}
	}
	if m.gate != nil {
		<-m.gate
	}
	time.Sleep(m.delay)
	m.mu.Lock()
	m.sizes = append(m.sizes, len(texts))
	m.mu.Unlock()
	out := make([]train.Classification, len(texts))
	for i, t := range texts {
		switch t {
		case "fail":
			return nil, errors.New("fake failure")
		case "panic":
			panic("fake panic")
		case "three":
			out[i] = train.Classification{Class: 2, Label: "?", Probabilities: []float64{0.2, 0.3, 0.5}}
			continue
		}
		p, err := strconv.ParseFloat(t, 64)
		if err != nil {
			p = 0.5
		}
		class := 0
		if p > 0.5 {
			class = 1
		}
		out[i] = train.Classification{Class: class, Label: m.Classes()[class], Probabilities: []float64{1 - p, p}}
	}
	return out, nil
}

func (m *fakeModel) batchSizes() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.sizes...)
}

// newTestServer serves a fake model on a loopback httptest server.
func newTestServer(t testing.TB, m Model, o Options) (*Server, *httptest.Server) {
	t.Helper()
	s := New(o)
	if m != nil {
		if err := s.SetModel(m); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.stopBatcher()
	})
	return s, ts
}

// call sends a request and returns the status, header and body.
func call(t *testing.T, method, u, body string) (int, http.Header, []byte) {
	t.Helper()
	code, h, b, err := try(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, h, b
}

// try is call for other goroutines than the test's.
func try(method, u, body string) (int, http.Header, []byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func postTexts(t *testing.T, base string, texts ...string) (int, PredictResponse, string) {
	t.Helper()
	body, _ := json.Marshal(PredictRequest{Texts: texts})
	code, _, b := call(t, http.MethodPost, base+"/v1/predict", string(body))
	var resp PredictResponse
	if code == http.StatusOK {
		if err := json.Unmarshal(b, &resp); err != nil {
			t.Fatalf("answer %s: %v", b, err)
		}
	}
	return code, resp, string(b)
}

// verdict is a prediction's probability and label, the fields of a binary model's answer that
// clients have read from the start.
type verdict struct {
	Probability float64
	Label       string
}

func verdictOf(p Prediction) verdict { return verdict{p.Probability, p.Label} }

func TestPredictPOSTAndGET(t *testing.T) {
	_, ts := newTestServer(t, &fakeModel{}, Options{})
	code, resp, raw := postTexts(t, ts.URL, "0.95", "0.05", "0.55", "0.3", "0.45", "0.8")
	if code != http.StatusOK {
		t.Fatalf("POST: %d %s", code, raw)
	}
	if resp.Model != "fake" || len(resp.Predictions) != 6 {
		t.Fatalf("POST answer %s", raw)
	}
	want := []verdict{{0.95, "Extremely Positive"}, {0.05, "Extremely Negative"}, {0.55, "Somewhat Positive"},
		{0.3, "Negative"}, {0.45, "Somewhat Negative"}, {0.8, "Positive"}}
	for i, p := range resp.Predictions {
		if verdictOf(p) != want[i] {
			t.Errorf("prediction %d = %+v, want %+v", i, p, want[i])
		}
		class := "neg"
		if want[i].Probability > 0.5 {
			class = "pos"
		}
		if p.Class != class || !slices.Equal(p.Probabilities, train.ClassProbabilities{{Class: "neg", Probability: 1 - want[i].Probability}, {Class: "pos", Probability: want[i].Probability}}) {
			t.Errorf("prediction %d = %+v: want class %s and probabilities neg %v, pos %v", i, p, class, 1-want[i].Probability, want[i].Probability)
		}
	}
	if !slices.Equal(resp.Classes, []string{"neg", "pos"}) {
		t.Errorf("classes %q", resp.Classes)
	}
	// Today's fields first, as clients of a binary model read them, then the class and every
	// class's probability in the model's order.
	if want := `{"probability":0.95,"label":"Extremely Positive","class":"pos","probabilities":{"neg":0.050000000000000044,"pos":0.95}}`; !strings.Contains(raw, want) {
		t.Errorf("POST answer %s lacks %s", raw, want)
	}

	code, h, b := call(t, http.MethodGet, ts.URL+"/v1/predict?text=0.7&text="+url.QueryEscape("0.2"), "")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("GET: %d %s %s", code, h.Get("Content-Type"), b)
	}
	var got PredictResponse
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Predictions) != 2 || verdictOf(got.Predictions[0]) != (verdict{0.7, "Positive"}) || verdictOf(got.Predictions[1]) != (verdict{0.2, "Negative"}) {
		t.Errorf("GET answer %s", b)
	}
}

// TestRoutes: each endpoint answers its methods (GET takes HEAD too); another method gets 405
// with the endpoint's methods in Allow and a JSON error, an unknown path 404, both counted.
func TestRoutes(t *testing.T) {
	_, ts := newTestServer(t, &fakeModel{}, Options{})
	for _, c := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/", 200, ""},
		{"HEAD", "/", 200, ""},
		{"GET", "/healthz", 200, ""},
		{"HEAD", "/healthz", 200, ""},
		{"GET", "/readyz", 200, ""},
		{"GET", "/metrics", 200, ""},
		{"GET", "/v1/predict?text=0.7", 200, ""},
		{"HEAD", "/v1/predict?text=0.7", 200, ""}, // a GET without the body (405 before the ServeMux)
		{"POST", "/v1/predict", 400, ""},          // no body
		{"GET", "/v1/model", 200, ""},
		{"POST", "/v1/model", 405, "GET, HEAD"},
		{"PUT", "/v1/predict", 405, "GET, HEAD, POST"},
		{"DELETE", "/healthz", 405, "GET, HEAD"},
		{"POST", "/readyz", 405, "GET, HEAD"},
		{"POST", "/metrics", 405, "GET, HEAD"},
		{"POST", "/", 405, "GET, HEAD"},
		{"GET", "/index.html", 404, ""},
		{"GET", "/v1/predict/", 404, ""},
		{"GET", "/healthz/x", 404, ""},
	} {
		code, h, b := call(t, c.method, ts.URL+c.path, "")
		if code != c.code || h.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d, Allow %q; want %d, Allow %q (%s)", c.method, c.path, code, h.Get("Allow"), c.code, c.allow, b)
		}
		if code == 405 || code == 404 {
			var e ErrorResponse
			if err := json.Unmarshal(b, &e); err != nil || e.Error == "" || h.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: %d answer %q (%s), want a JSON error", c.method, c.path, code, b, h.Get("Content-Type"))
			}
		}
	}
	_, _, b := call(t, "GET", ts.URL+"/metrics", "")
	for series, want := range map[string]float64{
		`sentibench_http_requests_total{code="405",endpoint="/v1/predict"}`: 1,
		`sentibench_http_requests_total{code="405",endpoint="/healthz"}`:    1,
		`sentibench_http_requests_total{code="405",endpoint="/"}`:           1,
		`sentibench_http_requests_total{code="200",endpoint="/"}`:           2,
		`sentibench_http_requests_total{code="404",endpoint="other"}`:       3,
	} {
		if got := metricValue(t, string(b), series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// TestBadRequests: every malformed request gets a 4xx with a JSON error, and the server goes
// on serving.
func TestBadRequests(t *testing.T) {
	_, ts := newTestServer(t, &fakeModel{}, Options{MaxTexts: 4, MaxTextBytes: 100, MaxBodyBytes: 2000})
	many := `{"texts": ["0.1","0.2","0.3","0.4","0.5"]}`
	cases := []struct {
		name, method, path, body string
		code                     int
		want                     string // in the error
	}{
		{"bad JSON", "POST", "/v1/predict", `{"texts": [`, 400, "bad JSON"},
		{"not JSON", "POST", "/v1/predict", `texts=hello`, 400, "bad JSON"},
		{"empty body", "POST", "/v1/predict", ``, 400, "empty body"},
		{"unknown field", "POST", "/v1/predict", `{"text": "0.5"}`, 400, `unknown field "text"`},
		{"texts not a list", "POST", "/v1/predict", `{"texts": "0.5"}`, 400, "bad JSON"},
		{"text not a string", "POST", "/v1/predict", `{"texts": [0.5]}`, 400, "bad JSON"},
		{"trailing data", "POST", "/v1/predict", `{"texts": ["0.5"]} {"texts": []}`, 400, "data after"},
		{"no texts", "POST", "/v1/predict", `{"texts": []}`, 400, "no texts"},
		{"null texts", "POST", "/v1/predict", `{"texts": null}`, 400, "no texts"},
		{"empty text", "POST", "/v1/predict", `{"texts": ["0.5", "  \n"]}`, 400, "text 1 is empty"},
		{"too many texts", "POST", "/v1/predict", many, 413, "5 texts: at most 4"},
		{"text too long", "POST", "/v1/predict", `{"texts": ["` + strings.Repeat("a", 101) + `"]}`, 413, "text 0 is 101 bytes"},
		{"huge body", "POST", "/v1/predict", `{"texts": ["` + strings.Repeat("a", 1<<20) + `"]}`, 413, "over 2000 bytes"},
		{"huge body after JSON", "POST", "/v1/predict", `{"texts": ["0.5"]}` + strings.Repeat(" ", 4000), 413, "over 2000 bytes"},
		{"GET without text", "GET", "/v1/predict", ``, 400, "no text"},
		{"GET empty text", "GET", "/v1/predict?text=", ``, 400, "text 0 is empty"},
		{"invalid UTF-8 in JSON", "POST", "/v1/predict", "{\"texts\": [\"fine\", \"bad \xff byte\"]}", 400, "the body is not valid UTF-8 (byte 0xff at offset 24)"},
		{"GET invalid UTF-8", "GET", "/v1/predict?text=fine&text=bad%C3byte", ``, 400, "text 1 is not valid UTF-8 (byte 0xc3 at offset 3)"},
		{"PUT", "PUT", "/v1/predict", `{"texts": ["0.5"]}`, 405, "method PUT not allowed"},
		{"DELETE", "DELETE", "/v1/predict", ``, 405, "method DELETE not allowed"},
		{"POST healthz", "POST", "/healthz", `{}`, 405, "not allowed"},
		{"POST page", "POST", "/", `{}`, 405, "not allowed"},
		{"unknown path", "GET", "/v2/predict", ``, 404, "no such page"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, h, b := call(t, c.method, ts.URL+c.path, c.body)
			if code != c.code {
				t.Errorf("status %d, want %d (%s)", code, c.code, b)
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var e ErrorResponse
			if err := json.Unmarshal(b, &e); err != nil || !strings.Contains(e.Error, c.want) {
				t.Errorf("error %s (%v), want it to contain %q", b, err, c.want)
			}
			if code == 405 && h.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	if code, _, raw := postTexts(t, ts.URL, "0.9"); code != 200 {
		t.Fatalf("after the bad requests: %d %s", code, raw)
	}
	_, _, b := call(t, "GET", ts.URL+"/metrics", "")
	if v := metricValue(t, string(b), `sentibench_errors_total{kind="bad_request"}`); v != 18 {
		t.Errorf("bad_request errors = %v, want 18 (the refused POST and GET /v1/predict requests)", v)
	}
}

// TestModelFailure: a request the model fails on gets 500, and the requests batched with it
// still get their answers; a panicking model does not bring the server down.
func TestModelFailure(t *testing.T) {
	m := &fakeModel{delay: 20 * time.Millisecond}
	_, ts := newTestServer(t, m, Options{BatchWait: 50 * time.Millisecond})
	texts := []string{"0.1", "fail", "0.2", "panic", "0.3", "0.4"}
	var wg sync.WaitGroup
	codes := make([]int, len(texts))
	answers := make([]PredictResponse, len(texts))
	for i, text := range texts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(PredictRequest{Texts: []string{text}})
			req, _ := http.NewRequest("POST", ts.URL+"/v1/predict", strings.NewReader(string(body)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			codes[i] = resp.StatusCode
			json.NewDecoder(resp.Body).Decode(&answers[i])
		}()
	}
	wg.Wait()
	for i, text := range texts {
		switch text {
		case "fail", "panic":
			if codes[i] != 500 {
				t.Errorf("%q: status %d, want 500", text, codes[i])
			}
		default:
			p, _ := strconv.ParseFloat(text, 64)
			if codes[i] != 200 || len(answers[i].Predictions) != 1 || answers[i].Predictions[0].Probability != p {
				t.Errorf("%q: status %d, answer %+v", text, codes[i], answers[i])
			}
		}
	}
	if code, _, raw := postTexts(t, ts.URL, "0.9"); code != 200 {
		t.Fatalf("after the failures: %d %s", code, raw)
	}
}

// TestModelBadClassification: a model that answers a text with other than its number of classes
// gets 500 naming the fault (not a panic of the handler), and the server goes on serving.
func TestModelBadClassification(t *testing.T) {
	_, ts := newTestServer(t, &fakeModel{}, Options{})
	code, _, b := call(t, "POST", ts.URL+"/v1/predict", `{"texts": ["0.2", "three"]}`)
	if code != 500 || !strings.Contains(string(b), "text 1: class 2 and 3 probabilities for a model of 2 classes") {
		t.Errorf("%d %s", code, b)
	}
	if code, _, raw := postTexts(t, ts.URL, "0.9"); code != 200 {
		t.Fatalf("after the fault: %d %s", code, raw)
	}
}

// TestMicroBatching: concurrent requests share calls of the model, and the metrics show it.
func TestMicroBatching(t *testing.T) {
	m := &fakeModel{delay: 10 * time.Millisecond}
	_, ts := newTestServer(t, m, Options{MaxBatch: 16, BatchWait: 20 * time.Millisecond})
	const n = 48
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := fmt.Sprintf("0.%02d", i+10)
			body, _ := json.Marshal(PredictRequest{Texts: []string{text}})
			resp, err := http.Post(ts.URL+"/v1/predict", "application/json", strings.NewReader(string(body)))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var got PredictResponse
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
				t.Errorf("request %d: status %d, %v", i, resp.StatusCode, err)
				return
			}
			if want, _ := strconv.ParseFloat(text, 64); got.Predictions[0].Probability != want {
				t.Errorf("request %d got %v, want %v: answers mixed up", i, got.Predictions[0].Probability, want)
			}
		}()
	}
	wg.Wait()
	sizes := m.batchSizes()
	total, biggest := 0, 0
	for _, s := range sizes {
		total += s
		biggest = max(biggest, s)
	}
	if total != n || biggest < 2 || biggest > 16 {
		t.Errorf("batch sizes %v: want %d texts in batches of 2 to 16", sizes, n)
	}
	_, _, b := call(t, "GET", ts.URL+"/metrics", "")
	calls := metricValue(t, string(b), "sentibench_batch_size_count")
	single := metricValue(t, string(b), `sentibench_batch_size_bucket{le="1"}`)
	if calls != float64(len(sizes)) || metricValue(t, string(b), "sentibench_batch_size_sum") != n {
		t.Errorf("metrics: %v calls, want %d", calls, len(sizes))
	}
	if calls-single < 1 {
		t.Errorf("metrics show no batch of more than one text:\n%s", b)
	}
	t.Logf("%d requests in %d calls of the model: %v", n, len(sizes), sizes)
}

// TestLoneRequestIsNotDelayed: with nothing else on its way, a request does not wait for
// company (BatchWait is a long 10 s here).
func TestLoneRequestIsNotDelayed(t *testing.T) {
	_, ts := newTestServer(t, &fakeModel{}, Options{BatchWait: 10 * time.Second})
	start := time.Now()
	for range 3 {
		if code, _, raw := postTexts(t, ts.URL, "0.9"); code != 200 {
			t.Fatalf("%d %s", code, raw)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("3 lone requests took %v: they waited for a batch", d)
	}
}

// TestLargeRequestIsChunked: a request with more texts than MaxBatch is run in several calls.
func TestLargeRequestIsChunked(t *testing.T) {
	m := &fakeModel{}
	_, ts := newTestServer(t, m, Options{MaxBatch: 4})
	var texts []string
	for i := range 10 {
		texts = append(texts, fmt.Sprintf("0.%d", i))
	}
	code, resp, raw := postTexts(t, ts.URL, texts...)
	if code != 200 || len(resp.Predictions) != 10 {
		t.Fatalf("%d %s", code, raw)
	}
	for i, p := range resp.Predictions {
		if p.Probability != float64(i)/10 {
			t.Errorf("prediction %d = %v", i, p.Probability)
		}
	}
	if got := fmt.Sprint(m.batchSizes()); got != "[4 4 2]" {
		t.Errorf("calls of sizes %s, want [4 4 2]", got)
	}
}

func TestNotReadyWithoutModel(t *testing.T) {
	s, ts := newTestServer(t, nil, Options{})
	if code, _, b := call(t, "GET", ts.URL+"/healthz", ""); code != 200 {
		t.Errorf("healthz %d %s", code, b)
	}
	if code, _, b := call(t, "GET", ts.URL+"/readyz", ""); code != 503 || !strings.Contains(string(b), "loading") {
		t.Errorf("readyz %d %s", code, b)
	}
	if code, _, b := call(t, "GET", ts.URL+"/v1/predict?text=0.5", ""); code != 503 {
		t.Errorf("predict %d %s", code, b)
	}
	if code, _, b := call(t, "GET", ts.URL+"/v1/model", ""); code != 503 || !strings.Contains(string(b), "not loaded") {
		t.Errorf("model %d %s", code, b)
	}
	if err := s.SetModel(&fakeModel{}); err != nil {
		t.Fatal(err)
	}
	if code, _, b := call(t, "GET", ts.URL+"/readyz", ""); code != 200 || !strings.Contains(string(b), `"model":"fake"`) {
		t.Errorf("readyz after SetModel: %d %s", code, b)
	}
	if code, _, b := call(t, "GET", ts.URL+"/v1/model", ""); code != 200 || string(b) != `{"model":"fake","classes":["neg","pos"],"sentiment_levels":true}`+"\n" {
		t.Errorf("model after SetModel: %d %s", code, b)
	}
	if err := s.SetModel(&fakeModel{}); err == nil {
		t.Error("a second SetModel was accepted")
	}
}

func TestRequestTimeout(t *testing.T) {
	m := &fakeModel{gate: make(chan struct{})}
	_, ts := newTestServer(t, m, Options{RequestTimeout: 50 * time.Millisecond})
	defer close(m.gate)
	code, _, b := call(t, "GET", ts.URL+"/v1/predict?text=0.5", "")
	if code != http.StatusGatewayTimeout || !strings.Contains(string(b), "no answer within 50ms") {
		t.Errorf("%d %s", code, b)
	}
}

// TestOverloaded: with the model busy and the queue full, a request gets 503 at once.
func TestOverloaded(t *testing.T) {
	m := &fakeModel{gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	s, ts := newTestServer(t, m, Options{MaxQueue: 1, BatchWait: time.Millisecond})
	results := make(chan int, 2)
	get := func() {
		code, _, _, err := try("GET", ts.URL+"/v1/predict?text=0.5", "")
		if err != nil {
			t.Error(err)
		}
		results <- code
	}
	go get()
	<-m.entered // the first request is in the model
	go get()
	deadline := time.Now().Add(5 * time.Second)
	for len(s.currentBatcher().queue) != 1 { // the second waits in the queue
		if time.Now().After(deadline) {
			t.Fatal("the second request never reached the queue")
		}
		time.Sleep(time.Millisecond)
	}
	code, h, b := call(t, "GET", ts.URL+"/v1/predict?text=0.5", "")
	if code != 503 || h.Get("Retry-After") == "" || !strings.Contains(string(b), "overloaded") {
		t.Errorf("third request: %d %s", code, b)
	}
	m.gate <- struct{}{}
	<-m.entered
	m.gate <- struct{}{}
	for range 2 {
		if c := <-results; c != 200 {
			t.Errorf("a queued request got %d", c)
		}
	}
}

// TestGracefulShutdown: after the stop signal, /readyz turns not ready while the server still
// serves (ShutdownDelay); then a request in flight finishes with its answer, Run returns nil,
// and new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	m := &fakeModel{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	s := New(Options{ShutdownDelay: 300 * time.Millisecond, ShutdownTimeout: 10 * time.Second})
	if err := s.SetModel(m); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, ln) }()

	if code, _, b := call(t, "GET", base+"/readyz", ""); code != 200 {
		t.Fatalf("readyz before: %d %s", code, b)
	}
	type answer struct {
		code int
		body string
	}
	inFlight := make(chan answer, 1)
	go func() {
		code, _, raw, err := try("POST", base+"/v1/predict", `{"texts": ["0.77"]}`)
		if err != nil {
			t.Error(err)
		}
		inFlight <- answer{code, string(raw)}
	}()
	<-m.entered // the request is in the model
	cancel()    // SIGTERM

	deadline := time.Now().Add(5 * time.Second)
	for s.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("still ready after the stop")
		}
		time.Sleep(time.Millisecond)
	}
	// Within ShutdownDelay: still serving, not ready.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("readyz while draining: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("readyz while draining: %d, want 503", resp.StatusCode)
	}
	select {
	case err := <-runErr:
		t.Fatalf("Run returned %v with a request in flight", err)
	case <-time.After(500 * time.Millisecond): // past ShutdownDelay, Run waits for the request
	}
	close(m.gate)
	a := <-inFlight
	if a.code != 200 || !strings.Contains(a.body, `"probability":0.77`) {
		t.Errorf("the request in flight got %d %s", a.code, a.body)
	}
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the last request")
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Error("the server still accepts connections after Run returned")
	}
}

func TestPage(t *testing.T) {
	_, ts := newTestServer(t, &fakeModel{}, Options{})
	code, h, b := call(t, "GET", ts.URL+"/", "")
	if code != 200 || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %s", code, h.Get("Content-Type"))
	}
	page := string(b)
	for _, p := range []float64{0.05, 0.2, 0.45, 0.55, 0.7, 0.95} {
		if label := train.SentimentLabel(p); !strings.Contains(page, `"`+label+`"`) {
			t.Errorf("the page does not know the label %q", label)
		}
	}
	if !strings.Contains(page, `fetch("v1/predict"`) {
		t.Error("the page does not call the API")
	}
	if m := regexp.MustCompile(`(?i)(src|href|url)\s*[=(]\s*["']?(https?:)?//`).FindString(page); m != "" {
		t.Errorf("the page refers to an external asset: %s", m)
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'sha256-") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

// metricValue returns the value of the series whose name and labels are exactly series.
func metricValue(t *testing.T, exposition, series string) float64 {
	t.Helper()
	for line := range strings.Lines(exposition) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && name == series {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no series %s in\n%s", series, exposition)
	return 0
}
