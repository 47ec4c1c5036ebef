package train

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/data"
)

// TestEvaluateLevels cuts a binary run's probability into IMDB's rating4 levels and checks the
// result against a recomputation through the Predictor: the cut points split the valid split's
// probabilities at its class shares exactly, and the test split's confusion matrix is that of
// the probabilities cut at them.
func TestEvaluateLevels(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Limit, cfg.Epochs = 40, 1
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	res, err := EvaluateLevels(context.Background(), cfg.RunDir, data.TargetRating4, EvalOptions{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Classes, []string{"1-2", "3-4", "7-8", "9-10"}) || len(res.Cuts) != 3 || !slices.IsSorted(res.Cuts) {
		t.Fatalf("classes %q, cuts %v", res.Classes, res.Cuts)
	}
	if !strings.Contains(log.String(), "cut into the 4 classes of target rating4") {
		t.Errorf("log %q", log.String())
	}

	c, err := data.Load(context.Background(), data.Options{Path: "sample", Limit: 40, Seed: cfg.Seed, Target: data.TargetRating4})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(cfg.RunDir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	probs := func(idx []int) []float64 {
		texts := make([]string, len(idx))
		for i, k := range idx {
			texts[i] = c.Examples[k].Text
		}
		ps, err := p.Predict(texts)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	// The valid split: below cut k lie exactly the reviews of the classes below k, by count.
	valid := probs(c.Valid)
	for k, cut := range res.Cuts {
		below, want := 0, 0
		for i, v := range valid {
			if v < cut {
				below++
			}
			if c.Examples[c.Valid[i]].Label <= k {
				want++
			}
		}
		if below != want {
			t.Errorf("cut %d (%.4f): %d valid reviews below, want %d (the classes' share)", k+1, cut, below, want)
		}
	}
	// The test split, cut at those points.
	confusion := make([][]int, 4)
	for i := range confusion {
		confusion[i] = make([]int, 4)
	}
	for i, v := range probs(c.Test) {
		confusion[c.Examples[c.Test[i]].Label][level(v, res.Cuts)]++
	}
	for i := range confusion {
		if !slices.Equal(confusion[i], res.Metrics.Confusion[i]) {
			t.Fatalf("confusion %v, recomputed %v", res.Metrics.Confusion, confusion)
		}
	}
	if res.Metrics.N != len(c.Test) || res.Metrics.MAE == nil {
		t.Errorf("%d examples (want %d), MAE %v", res.Metrics.N, len(c.Test), res.Metrics.MAE)
	}

	// Bad input: a target that is not ordinal levels; a run that is not binary.
	var ce *ConfigError
	if _, err := EvaluateLevels(context.Background(), cfg.RunDir, data.TargetSentiment, EvalOptions{}); !errors.As(err, &ce) || ce.Field != "levels" {
		t.Errorf("levels of the sentiment target: %v", err)
	}
	kcfg := cfg
	kcfg.Target, kcfg.RunDir = data.TargetRating4, filepath.Join(t.TempDir(), "k")
	if _, err := Run(context.Background(), kcfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	if _, err := EvaluateLevels(context.Background(), kcfg.RunDir, data.TargetRating, EvalOptions{}); !errors.As(err, &ce) || !strings.Contains(err.Error(), "needs a binary run") {
		t.Errorf("levels of a 4-class run: %v", err)
	}
}
