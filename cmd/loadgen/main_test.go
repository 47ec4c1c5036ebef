package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sentibench/sentibench/serve"
	"github.com/sentibench/sentibench/train"
)

// constModel classifies every text as pos, probability 0.8, after a short pause.
type constModel struct{}

func (constModel) Name() string      { return "const" }
func (constModel) Classes() []string { return []string{"neg", "pos"} }
func (constModel) Classify(texts []string) ([]train.Classification, error) {
	time.Sleep(200 * time.Microsecond)
	out := make([]train.Classification, len(texts))
	for i := range out {
		out[i] = train.Classification{Class: 1, Label: "pos", Probabilities: []float64{0.2, 0.8}}
	}
	return out, nil
}

func TestLoadAgainstServer(t *testing.T) {
	s := serve.New(serve.Options{})
	if err := s.SetModel(constModel{}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	if model, err := waitReady(ts.URL, time.Second); err != nil || model != "const" {
		t.Fatalf("waitReady: %q %v", model, err)
	}
	bodies := [][]byte{[]byte(`{"texts": ["a", "b"]}`)}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	r := load(client, ts.URL, bodies, 4, 300*time.Millisecond, 50, 2)
	if r.Requests != 50 || r.Errors != 0 || r.Reviews != 100 || r.ReviewsPS <= 0 {
		t.Errorf("result %+v: want 50 requests, 100 reviews, no errors", r)
	}
	if !(r.P50ms > 0 && r.P50ms <= r.P90ms && r.P90ms <= r.P99ms && r.P99ms <= r.MaxMs) {
		t.Errorf("percentiles out of order: %+v", r)
	}
	sum, count, err := batchStats(client, ts.URL)
	if err != nil || sum != 100 || count < 1 || count > 50 {
		t.Errorf("batch stats: sum %v count %v (%v), want 100 texts in 1 to 50 calls", sum, count, err)
	}
}

func TestLoadCountsErrors(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error": "overloaded"}`, http.StatusServiceUnavailable)
	}))
	defer ts.Close()
	r := load(http.DefaultClient, ts.URL, [][]byte{[]byte(`{}`)}, 2, 200*time.Millisecond, 10, 1)
	if r.Errors != 10 || r.Reviews != 0 || !strings.Contains(r.FirstError, "status 503") {
		t.Errorf("result %+v: want 10 errors", r)
	}
}

func TestLoadReviews(t *testing.T) {
	for _, spec := range []string{"short", "imdb"} {
		texts, err := loadReviews(spec)
		if err != nil || len(texts) < 8 {
			t.Errorf("%s: %d reviews, %v", spec, len(texts), err)
		}
	}
	if _, err := loadReviews("/nonexistent/reviews.txt"); err == nil {
		t.Error("a missing file was accepted")
	}
}
