package serve

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects a server's JSON log; the handlers write to it from their goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records parses every line of the log as a JSON object; a line that is not one fails the test.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// waitForRequest returns the "request" record with this request ID. The server writes it after
// the answer, so the test may see the answer first: it waits for the record (up to 10 s).
func (b *logBuffer) waitForRequest(t *testing.T, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, rec := range b.records(t) {
			if rec["msg"] == "request" && rec["request_id"] == id {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request record with request_id %q in the log:\n%s", id, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newLoggedServer serves the fake model with a JSON log at the given level.
func newLoggedServer(t *testing.T, level slog.Level) (*logBuffer, string) {
	t.Helper()
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))
	_, ts := newTestServer(t, &fakeModel{}, Options{Logger: logger})
	return logs, ts.URL
}

// send sends a request with the given X-Request-ID headers (none when ids is empty).
func send(t *testing.T, method, url, body string, ids ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		req.Header.Add(RequestIDHeader, id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp, b.Bytes()
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// TestRequestLog: a request's JSON log record (debug level) has its method, path, status,
// duration, number of texts and ID; the client's X-Request-ID is answered back and logged.
func TestRequestLog(t *testing.T) {
	logs, base := newLoggedServer(t, slog.LevelDebug)
	resp, body := send(t, "POST", base+"/v1/predict", `{"texts": ["0.9", "0.2"]}`, "client-id-42")
	if resp.StatusCode != 200 || resp.Header.Get(RequestIDHeader) != "client-id-42" {
		t.Fatalf("%d %s, X-Request-ID %q; want 200 and the client's ID", resp.StatusCode, body, resp.Header.Get(RequestIDHeader))
	}
	rec := logs.waitForRequest(t, "client-id-42")
	for key, want := range map[string]any{"level": "DEBUG", "method": "POST", "path": "/v1/predict",
		"status": 200.0, "texts": 2.0} {
		if rec[key] != want {
			t.Errorf("%s = %v (%T), want %v in %v", key, rec[key], rec[key], want, rec)
		}
	}
	if s, ok := rec["seconds"].(float64); !ok || s <= 0 || s > 10 {
		t.Errorf("seconds = %v, want a duration in seconds", rec["seconds"])
	}
	if _, ok := rec["time"].(string); !ok {
		t.Errorf("no time in %v", rec)
	}
	if _, ok := rec["error"]; ok {
		t.Errorf("an error in the record of a success: %v", rec)
	}
	// The model's line at start-up.
	if recs := logs.records(t); recs[0]["msg"] != "model loaded, ready" || recs[0]["model"] != "fake" {
		t.Errorf("first record %v, want the model's", recs[0])
	}
}

// TestRequestIDGenerated: without X-Request-ID (or with an empty one) the server makes one up,
// 16 hex digits, a new one per request, in the answer's header, the error body and the log.
func TestRequestIDGenerated(t *testing.T) {
	logs, base := newLoggedServer(t, slog.LevelDebug)
	seen := map[string]bool{}
	for _, ids := range [][]string{nil, {""}} {
		resp, _ := send(t, "GET", base+"/healthz", "", ids...)
		id := resp.Header.Get(RequestIDHeader)
		if !generatedID.MatchString(id) || seen[id] {
			t.Errorf("X-Request-ID %q, want 16 new hex digits", id)
		}
		seen[id] = true
		if rec := logs.waitForRequest(t, id); rec["path"] != "/healthz" || rec["texts"] != 0.0 {
			t.Errorf("record %v", rec)
		}
	}
	// An error answer carries it in its body too; the record is a warning with the error.
	resp, body := send(t, "GET", base+"/v1/predict", "")
	id := resp.Header.Get(RequestIDHeader)
	var e ErrorResponse
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != 400 || e.RequestID != id || !generatedID.MatchString(id) {
		t.Errorf("%d %s (%v), X-Request-ID %q", resp.StatusCode, body, err, id)
	}
	rec := logs.waitForRequest(t, id)
	if rec["level"] != "WARN" || rec["status"] != 400.0 || !strings.Contains(rec["error"].(string), "no text") {
		t.Errorf("record of a refused request: %v, want a WARN with the error", rec)
	}
}

// TestBadRequestID: an X-Request-ID that is too long (10 KB), holds bytes other than printable
// ASCII, or is given twice is refused with 400 and an error that says why; the answer and the
// log carry a new ID instead, and the bad value is echoed nowhere.
func TestBadRequestID(t *testing.T) {
	logs, base := newLoggedServer(t, slog.LevelDebug)
	long := strings.Repeat("x", 10<<10)
	for _, c := range []struct {
		name string
		ids  []string
		want string
	}{
		{"10 KB", []string{long}, "X-Request-ID is 10240 bytes long: at most 128 printable ASCII characters"},
		{"129 bytes", []string{long[:129]}, "is 129 bytes long"},
		{"a tab", []string{"a\tb"}, "the byte 0x09 at offset 1"},
		{"not ASCII", []string{"café"}, "the byte 0xc3 at offset 3"},
		{"twice", []string{"a", "b"}, "X-Request-ID is given 2 times"},
	} {
		resp, body := send(t, "POST", base+"/v1/predict", `{"texts": ["0.9"]}`, c.ids...)
		id := resp.Header.Get(RequestIDHeader)
		var e ErrorResponse
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != 400 || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s: %d %s (%v), want 400 and %q", c.name, resp.StatusCode, body, err, c.want)
		}
		if !generatedID.MatchString(id) || e.RequestID != id {
			t.Errorf("%s: X-Request-ID %q, body's %q: want a new ID in both", c.name, id, e.RequestID)
		}
		rec := logs.waitForRequest(t, id)
		if rec["level"] != "WARN" || rec["status"] != 400.0 || rec["error"] != e.Error {
			t.Errorf("%s: record %v", c.name, rec)
		}
	}
	// A 128-character ID is taken.
	if resp, _ := send(t, "GET", base+"/healthz", "", long[:128]); resp.StatusCode != 200 || resp.Header.Get(RequestIDHeader) != long[:128] {
		t.Errorf("a 128-character ID: %d, X-Request-ID %d bytes", resp.StatusCode, len(resp.Header.Get(RequestIDHeader)))
	}
	logs.waitForRequest(t, long[:128])
	if strings.Contains(logs.String(), long[:129]) {
		t.Errorf("the log holds more than 128 bytes of a refused X-Request-ID")
	}
}

// TestRequestLogLevel: at the info level the successful requests are not logged, the failed
// ones are.
func TestRequestLogLevel(t *testing.T) {
	logs, base := newLoggedServer(t, slog.LevelInfo)
	send(t, "GET", base+"/healthz", "", "ok-1")
	send(t, "GET", base+"/nowhere", "", "missing-1")
	logs.waitForRequest(t, "missing-1")
	for _, rec := range logs.records(t) {
		if rec["request_id"] == "ok-1" {
			t.Errorf("a successful request logged at the info level: %v", rec)
		}
	}
}
