package serve

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzPredict sends arbitrary bodies and query texts to /v1/predict: every answer is JSON with a
// status the API documents, and the server never fails (500) but for a model failure. `go test`
// runs the seeds; `go test -fuzz FuzzPredict ./serve` searches.
func FuzzPredict(f *testing.F) {
	for _, s := range []string{`{"texts": ["0.9", "a fine film"]}`, `{"texts": [`, `{"texts": null}`, `{"texts": ["\u0000", "é"]}`,
		`{"texts": ["0.5"]} {}`, `{"texts": ["` + strings.Repeat("a", 300) + `"]}`, `[]`, `null`, ``} {
		f.Add(s, "0.7")
	}
	s, _ := newTestServer(f, &fakeModel{}, Options{MaxTexts: 4, MaxTextBytes: 200, MaxBodyBytes: 4000})
	allowed := map[int]bool{200: true, 400: true, 413: true}
	f.Fuzz(func(t *testing.T, body, text string) {
		for _, req := range []*http.Request{
			httptest.NewRequest(http.MethodPost, "/v1/predict", strings.NewReader(body)),
			httptest.NewRequest(http.MethodGet, "/v1/predict?text="+url.QueryEscape(text)+"&text="+url.QueryEscape(body), nil),
		} {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			failing := strings.Contains(body+text, "fail") || strings.Contains(body+text, "panic")
			if !allowed[rec.Code] && !(rec.Code == 500 && failing) {
				t.Fatalf("%s: status %d: %s", req.Method, rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("%s: Content-Type %q", req.Method, ct)
			}
			var v any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatalf("%s: the answer is not JSON: %v: %q", req.Method, err, rec.Body)
			}
			if rec.Code == 200 {
				var r PredictResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || len(r.Predictions) == 0 {
					t.Fatalf("%s: 200 without predictions: %s", req.Method, rec.Body)
				}
			}
		}
	})
}
