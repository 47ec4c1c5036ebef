package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
	"github.com/sentibench/sentibench/train"
)

// trainRun trains a small model of the given kind on the bundled sample (a second or two) and
// returns its run directory. The bigru runs over the tiny random BERT of ../shared.
func trainRun(t *testing.T, model string) string {
	t.Helper()
	cfg := train.DefaultConfig(model)
	if model == "bigru" {
		cfg.Encoder = testutil.Shared(t, "models/bert-uncased-random-L2-H32")
		t.Setenv("SENTIBENCH_CACHE", t.TempDir())
	}
	cfg.Data = "sample"
	cfg.Limit = 60
	cfg.Epochs = 1
	cfg.BatchSize = 16
	cfg.VocabSize = 2000
	cfg.EmbedDim = 16
	cfg.Filters = 8
	cfg.Hidden = 12
	cfg.Threads = 2
	cfg.RunDir = filepath.Join(t.TempDir(), model)
	if _, err := train.Run(context.Background(), cfg, train.Hooks{Log: io.Discard, Progress: io.Discard}); err != nil {
		t.Fatalf("training a %s: %v", model, err)
	}
	return cfg.RunDir
}

// startRun serves a run directory on a loopback listener, as `sentibench serve` does, and
// returns the base URL and a function that shuts the server down and returns Run's error.
func startRun(t *testing.T, dir string) (*train.Predictor, string, func() error) {
	t.Helper()
	p, err := train.Load(dir, train.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{})
	if err := s.SetModel(FromPredictor(p)); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, ln) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-runErr
	}
	t.Cleanup(func() { stop() })
	return p, "http://" + ln.Addr().String(), stop
}

var reviews = []string{
	"An absolute masterpiece. The performances are stunning and the story stayed with me for days.",
	"The worst movie I have seen in years. Boring, ugly and far too long.",
	"A pleasant enough film with a few good laughs, though the second half drags.",
	"I wanted to like it, but the plot is a mess and the dialogue is painfully flat.",
	"Great cast, great music, great fun!",
}

// TestServeTrainedRun serves real trained runs (cnn, lstm and bigru) over HTTP and checks the
// answers against the predictor called directly.
func TestServeTrainedRun(t *testing.T) {
	for _, model := range []string{"cnn", "lstm", "bigru"} {
		t.Run(model, func(t *testing.T) {
			p, base, stop := startRun(t, trainRun(t, model))

			want, err := p.Predict(reviews)
			if err != nil {
				t.Fatal(err)
			}
			code, resp, raw := postTexts(t, base, reviews...)
			if code != 200 || resp.Model != model || len(resp.Predictions) != len(reviews) {
				t.Fatalf("POST: %d %s", code, raw)
			}
			for i, got := range resp.Predictions {
				if got.Probability != want[i] || got.Label != train.SentimentLabel(want[i]) {
					t.Errorf("review %d: served %+v, the predictor says %v (%s)", i, got, want[i], train.SentimentLabel(want[i]))
				}
			}

			solo, err := p.Predict(reviews[:1])
			if err != nil {
				t.Fatal(err)
			}
			code, _, b := call(t, "GET", base+"/v1/predict?text="+url.QueryEscape(reviews[0]), "")
			var got PredictResponse
			if err := json.Unmarshal(b, &got); code != 200 || err != nil || got.Predictions[0].Probability != solo[0] {
				t.Errorf("GET: %d %s, want probability %v", code, b, solo[0])
			}

			// A text without a word: the word models refuse it, the bigru's encoder takes it.
			code, _, b = call(t, "POST", base+"/v1/predict", `{"texts": ["fine", ";;; \"\" :"]}`)
			if model == "bigru" {
				if code != 200 {
					t.Errorf("bigru, a text without words: %d %s", code, b)
				}
			} else if code != 400 || !strings.Contains(string(b), "text 1: no words") {
				t.Errorf("a text without words: %d %s", code, b)
			}

			// Concurrent clients: each gets its own text's answer (batched with others, the
			// figure may move in the last digits where a model sees padding).
			var wg sync.WaitGroup
			for i := range 24 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					text := reviews[i%len(reviews)]
					body, _ := json.Marshal(PredictRequest{Texts: []string{text}})
					code, _, b, err := try("POST", base+"/v1/predict", string(body))
					var got PredictResponse
					if err == nil {
						err = json.Unmarshal(b, &got)
					}
					if err != nil || code != 200 {
						t.Errorf("client %d: %d %s %v", i, code, b, err)
						return
					}
					if d := math.Abs(got.Predictions[0].Probability - want[i%len(reviews)]); d > 1e-4 {
						t.Errorf("client %d: probability %v, want %v", i, got.Predictions[0].Probability, want[i%len(reviews)])
					}
				}()
			}
			wg.Wait()

			_, _, b = call(t, "GET", base+"/metrics", "")
			if v := metricValue(t, string(b), fmt.Sprintf(`sentibench_model_info{model=%q}`, model)); v != 1 {
				t.Errorf("model_info %v", v)
			}
			if err := checkExposition(string(b)); err != nil {
				t.Error(err)
			}
			if err := stop(); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}
