package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
	"github.com/sentibench/sentibench/nn"
)

// tinyBiGRUConfig is a small bigru run over the shared tiny random BERT, with a feature cache
// of the test's own; it returns the encoder directory too.
func tinyBiGRUConfig(t *testing.T) (Config, string) {
	t.Helper()
	enc := testutil.Shared(t, "models/bert-uncased-random-L2-H32")
	t.Setenv("SENTIBENCH_CACHE", t.TempDir())
	cfg := smallConfig("bigru")
	cfg.Encoder = enc
	return cfg, enc
}

// cachedAndRecomputed runs cfg twice: from the feature cache, and recomputing the encoder every
// batch (the seed's way).
func cachedAndRecomputed(t *testing.T, cfg Config) (cached, recomputed *Result) {
	t.Helper()
	cfg.RunDir = filepath.Join(t.TempDir(), "cached")
	cached, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	cfg.FeatureCache = NoFeatureCache
	cfg.RunDir = filepath.Join(t.TempDir(), "recomputed")
	if recomputed, err = Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	return cached, recomputed
}

// TestBiGRUCacheMatchesRecompute trains the bigru head over the tiny random BERT of ../shared,
// once from the feature cache (float16) and once recomputing the encoder every batch (float32,
// the seed's way): the figures agree to float16 precision, and the trained run predicts.
func TestBiGRUCacheMatchesRecompute(t *testing.T) {
	cfg, _ := tinyBiGRUConfig(t)
	cfg.Epochs = 2
	cfg.Limit = 30
	cached, recomputed := cachedAndRecomputed(t, cfg)
	for i := range cached.Epochs {
		a, b := cached.Epochs[i], recomputed.Epochs[i]
		if math.Abs(a.TrainLoss-b.TrainLoss) > 1e-3 || math.Abs(a.ValidLoss-b.ValidLoss) > 1e-3 {
			t.Errorf("epoch %d: cached train/valid loss %v/%v, recomputed %v/%v", i+1, a.TrainLoss, a.ValidLoss, b.TrainLoss, b.ValidLoss)
		}
	}
	if math.Abs(cached.Final.TestLoss-recomputed.Final.TestLoss) > 1e-3 {
		t.Errorf("test loss: cached %v, recomputed %v", cached.Final.TestLoss, recomputed.Final.TestLoss)
	}
	p, err := Load(cached.RunDir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	probs, err := p.Predict([]string{"A fine film.", "Dull and far too long; I left early."})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range probs {
		if !(q > 0 && q < 1) {
			t.Fatalf("probabilities %v", probs)
		}
	}
}

// TestBiGRUHeadTail trains the bigru with head+tail truncation, from the cache and recomputing
// the encoder: both cut the reviews alike (same figures), the run remembers the setting, and
// its predictor cuts new reviews the same way. Bad settings are refused before any work.
func TestBiGRUHeadTail(t *testing.T) {
	cfg, enc := tinyBiGRUConfig(t)
	cfg.Epochs = 1
	cfg.Limit = 30
	cfg.TruncateHead = 100
	cached, recomputed := cachedAndRecomputed(t, cfg)
	if a, b := cached.Epochs[0], recomputed.Epochs[0]; math.Abs(a.TrainLoss-b.TrainLoss) > 1e-3 || a.Tokens != b.Tokens {
		t.Errorf("cached train loss %v over %d word pieces, recomputed %v over %d", a.TrainLoss, a.Tokens, b.TrainLoss, b.Tokens)
	}
	p, err := Load(cached.RunDir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.encoder.TruncateHead != 100 {
		t.Errorf("the predictor's encoder truncates with head %d, want 100", p.encoder.TruncateHead)
	}

	for _, c := range []struct {
		model string
		head  int
		want  string
	}{
		{"bigru", 510, "head+tail"},
		{"bigru", -1, "negative"},
		{"lstm", 128, "bigru"},
	} {
		bad := smallConfig(c.model)
		if c.model == "bigru" {
			bad.Encoder = enc
		}
		bad.TruncateHead = c.head
		bad.RunDir = filepath.Join(t.TempDir(), "bad")
		if _, err := Run(context.Background(), bad, quietHooks()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with head %d: %v, want an error about %q", c.model, c.head, err, c.want)
		}
	}
}

// TestBiGRUConcatPool trains the bigru with concat pooling: the run records it, a resumed or
// loaded run builds the same wider head, and the word models refuse it.
func TestBiGRUConcatPool(t *testing.T) {
	cfg, enc := tinyBiGRUConfig(t)
	cfg.Epochs = 1
	cfg.Limit = 30
	cfg.Pool = nn.PoolConcat
	cfg.RunDir = filepath.Join(t.TempDir(), "concat")
	res, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(res.RunDir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Info.Model.Pool; got != nn.PoolConcat {
		t.Errorf("the run's model pools %q, want %q", got, nn.PoolConcat)
	}
	if _, err := p.Predict([]string{"A fine film."}); err != nil {
		t.Fatal(err)
	}
	bad := smallConfig("cnn")
	bad.Pool = nn.PoolConcat
	bad.RunDir = filepath.Join(t.TempDir(), "bad")
	if _, err := Run(context.Background(), bad, quietHooks()); err == nil || !strings.Contains(err.Error(), "bigru") {
		t.Errorf("cnn with concat pooling: %v", err)
	}
	bad = smallConfig("bigru")
	bad.Encoder, bad.Pool = enc, "attention"
	if _, err := Run(context.Background(), bad, quietHooks()); err == nil || !strings.Contains(err.Error(), "unknown pooling") {
		t.Errorf("unknown pooling: %v", err)
	}
}

// TestBiGRUEncoderLayers trains the bigru over the mean of two hidden states of the encoder,
// from the cache and recomputing the encoder: same figures; the run remembers the choice and its
// predictor encodes new reviews the same way. Bad choices are refused before any work.
func TestBiGRUEncoderLayers(t *testing.T) {
	cfg, enc := tinyBiGRUConfig(t)
	cfg.Epochs = 1
	cfg.Limit = 30
	cfg.EncoderLayers = []int{1, -1}
	cached, recomputed := cachedAndRecomputed(t, cfg)
	if a, b := cached.Epochs[0], recomputed.Epochs[0]; math.Abs(a.TrainLoss-b.TrainLoss) > 1e-3 || math.Abs(a.ValidLoss-b.ValidLoss) > 1e-3 {
		t.Errorf("cached train/valid loss %v/%v, recomputed %v/%v", a.TrainLoss, a.ValidLoss, b.TrainLoss, b.ValidLoss)
	}
	plain := cfg
	plain.EncoderLayers = nil
	plain.RunDir = filepath.Join(t.TempDir(), "plain")
	last, err := Run(context.Background(), plain, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	if last.Epochs[0].TrainLoss == recomputed.Epochs[0].TrainLoss {
		t.Errorf("the mean of hidden states 1 and 2 trains exactly as the last one (loss %v)", last.Epochs[0].TrainLoss)
	}
	p, err := Load(cached.RunDir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.encoder.Layers, []int{1, -1}) {
		t.Errorf("the predictor's encoder averages hidden states %v, want [1 -1]", p.encoder.Layers)
	}

	for _, c := range []struct {
		model  string
		layers []int
		want   string
	}{
		{"bigru", []int{3}, "hidden state 3"},
		{"bigru", []int{1, 1}, "twice"},
		{"lstm", []int{1}, "bigru"},
	} {
		bad := smallConfig(c.model)
		if c.model == "bigru" {
			bad.Encoder = enc
		}
		bad.EncoderLayers = c.layers
		bad.RunDir = filepath.Join(t.TempDir(), "bad")
		if _, err := Run(context.Background(), bad, quietHooks()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with hidden states %v: %v, want an error about %q", c.model, c.layers, err, c.want)
		}
		if _, err := os.Stat(bad.RunDir); err == nil {
			t.Errorf("%s with hidden states %v: the run directory was left behind", c.model, c.layers)
		}
	}
}
