package train

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/nn"
)

// kClassRun makes a finished run of K classes out of a small binary cnn run: config.json gets K
// outputs and K label names, the best checkpoint a fresh K-output model's weights (train cannot
// train K classes by itself until data and train's data loading take them). It returns the run
// directory and the model.
func kClassRun(t *testing.T, K int) (string, nn.Model) {
	t.Helper()
	cfg := smallConfig("cnn")
	cfg.Epochs, cfg.Limit = 1, 20
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	info, err := ReadRunInfo(cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	info.Model.Outputs = K
	info.Labels = nil
	for k := range K {
		info.Labels = append(info.Labels, string(rune('a'+k)))
	}
	if err := writeRunInfo(cfg.RunDir, info); err != nil {
		t.Fatal(err)
	}
	impl, err := blas.Load("")
	if err != nil {
		t.Fatal(err)
	}
	m, err := nn.NewModel(nn.NewCPU(impl, 1), info.Model, nn.NewRNG(5))
	if err != nil {
		t.Fatal(err)
	}
	if err := nn.SaveWeights(filepath.Join(cfg.RunDir, BestDir, WeightsFile), m, nil); err != nil {
		t.Fatal(err)
	}
	return cfg.RunDir, m
}

// TestPredictorLogitsKClasses: a K-class run's Predictor gives K logits per text, in the order
// of the texts (the batch runs sorted by length), each text's the same as alone; Predict, a
// binary model's probability, refuses the model.
func TestPredictorLogitsKClasses(t *testing.T) {
	const K = 3
	dir, _ := kClassRun(t, K)
	p, err := Load(dir, LoadOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"a fine film .", "the worst film of the year , dull and far too long .", "good", "not bad at all , really"}
	all, err := p.Logits(texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(texts)*K {
		t.Fatalf("%d logits for %d texts of %d classes", len(all), len(texts), K)
	}
	for i, text := range texts {
		one, err := p.Logits([]string{text})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(one, all[i*K:(i+1)*K]) {
			t.Errorf("text %d: logits %v in the batch, %v alone", i, all[i*K:(i+1)*K], one)
		}
	}
	if _, err := p.Predict(texts); err == nil || !strings.Contains(err.Error(), "3 classes") {
		t.Errorf("Predict of a 3-class model: err = %v", err)
	}
}
