package train

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadRunConfig loads a real small run (cnn and lstm) under an arbitrary config.json: an
// error naming the run, or a predictor that classifies a text. Never a panic. Configurations
// describing a model of over ten million weights are only read, not built (Validate bounds them
// at 2^30, which is too slow to allocate on every input). `go test` runs the seeds; `go test
// -fuzz FuzzLoadRunConfig ./train` searches.
func FuzzLoadRunConfig(f *testing.F) {
	runs := map[string]string{}
	for _, model := range []string{"cnn", "lstm"} {
		cfg := smallConfig(model)
		cfg.Epochs, cfg.Limit = 1, 20
		cfg.RunDir = filepath.Join(f.TempDir(), model)
		if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(cfg.RunDir, ConfigFile))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(model, b)
		f.Add(model, []byte(strings.Replace(string(b), `"filters": 8`, `"filters": 9`, 1)))
		runs[model] = cfg.RunDir
	}
	f.Fuzz(func(t *testing.T, model string, config []byte) {
		dir, ok := runs[model]
		if !ok {
			return
		}
		p := filepath.Join(dir, ConfigFile)
		if err := os.WriteFile(p, config, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := ReadRunInfo(dir)
		if err != nil {
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error does not name the run: %v", err)
			}
			return
		}
		m := info.Model
		size := float64(m.VocabSize)*float64(m.EmbedDim) + 8*float64(m.Hidden)*float64(m.Hidden+m.EmbedDim+m.InputDim)*float64(m.Layers)
		for _, w := range m.Widths {
			size += float64(m.Filters) * float64(w) * float64(m.EmbedDim)
		}
		if size > 1e7 || m.Kind == "bigru" {
			return
		}
		pr, err := Load(dir, LoadOptions{Threads: 1})
		if err != nil {
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error does not name the run: %v", err)
			}
			return
		}
		if _, err := pr.Predict([]string{"a fine film , well worth seeing ."}); err != nil {
			t.Fatalf("config %s loads, but Predict fails: %v", config, err)
		}
	})
}

// FuzzLoadRunModel loads the same real runs with their model's numbers replaced by arbitrary
// ones (vocabulary, sizes, layers, widths, padding id, outputs, dropout): an error naming the
// run, or a predictor that classifies a text.
func FuzzLoadRunModel(f *testing.F) {
	runs := map[string]string{}
	infos := map[string]RunInfo{}
	for _, model := range []string{"cnn", "lstm"} {
		cfg := smallConfig(model)
		cfg.Epochs, cfg.Limit = 1, 20
		cfg.RunDir = filepath.Join(f.TempDir(), model)
		if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
			f.Fatal(err)
		}
		info, err := ReadRunInfo(cfg.RunDir)
		if err != nil {
			f.Fatal(err)
		}
		runs[model], infos[model] = cfg.RunDir, info
		m := info.Model
		f.Add(model, m.VocabSize, m.EmbedDim, m.Filters, m.Hidden, m.Layers, 3, m.Outputs, m.PadID, m.Dropout)
	}
	f.Add("lstm", 100, 16, 0, 12, 3, 3, 1, 1, 0.3)
	f.Add("cnn", 1<<20, 1<<12, 8, 0, 0, 3, 1, -1, 0.0)
	f.Fuzz(func(t *testing.T, model string, vocab, embed, filters, hidden, layers, width, outputs, padID int, dropout float64) {
		dir, ok := runs[model]
		if !ok {
			return
		}
		info := infos[model]
		m := &info.Model
		m.VocabSize, m.EmbedDim, m.Hidden, m.Layers, m.Outputs, m.PadID, m.Dropout = vocab, embed, hidden, layers, outputs, padID, dropout
		if model == "cnn" {
			m.Filters, m.Widths = filters, []int{width, 4, 5}
		}
		size := float64(vocab)*float64(embed) + 8*float64(hidden)*(float64(hidden)+float64(embed))*float64(layers) +
			float64(filters)*float64(width+9)*float64(embed)
		if size > 1e7 || size < 0 {
			return // would be built: too slow for every input (and the JSON below is the same either way)
		}
		b, err := json.Marshal(info)
		if err != nil {
			return // NaN or Inf dropout: not representable in config.json
		}
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		pr, err := Load(dir, LoadOptions{Threads: 1})
		if err != nil {
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error does not name the run: %v", err)
			}
			return
		}
		if _, err := pr.Predict([]string{"a fine film , well worth seeing ."}); err != nil {
			t.Fatalf("model %+v loads, but Predict fails: %v", *m, err)
		}
	})
}
