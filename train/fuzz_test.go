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
	runs := smallRuns(f)
	for _, model := range []string{"cnn", "lstm"} { // in order: the seeds' numbers stay put
		dir := runs[model]
		b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(model, b)
		f.Add(model, []byte(strings.Replace(string(b), `"filters": 8`, `"filters": 9`, 1)))
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
		loadsOrNames(t, dir)
	})
}

// FuzzLoadRunModel loads the same real runs with their model's numbers replaced by arbitrary
// ones (vocabulary, sizes, layers, widths, padding id, outputs, dropout): an error naming the
// run, or a predictor that classifies a text.
func FuzzLoadRunModel(f *testing.F) {
	runs := smallRuns(f)
	infos := map[string]RunInfo{}
	for _, model := range []string{"cnn", "lstm"} {
		info, err := ReadRunInfo(runs[model])
		if err != nil {
			f.Fatal(err)
		}
		infos[model] = info
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
		loadsOrNames(t, dir)
	})
}

// smallRuns trains a small cnn and lstm run for one epoch on 20 reviews per folder and returns
// their directories by model.
func smallRuns(f *testing.F) map[string]string {
	runs := map[string]string{}
	for _, model := range []string{"cnn", "lstm"} {
		cfg := smallConfig(model)
		cfg.Epochs, cfg.Limit = 1, 20
		cfg.RunDir = filepath.Join(f.TempDir(), model)
		if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
			f.Fatal(err)
		}
		runs[model] = cfg.RunDir
	}
	return runs
}

// loadsOrNames requires Load of dir to fail with an error naming the run, or to give a predictor
// that classifies a text.
func loadsOrNames(t *testing.T, dir string) {
	pr, err := Load(dir, LoadOptions{Threads: 1})
	if err != nil {
		if !strings.Contains(err.Error(), dir) {
			t.Fatalf("error does not name the run: %v", err)
		}
		return
	}
	if _, err := pr.Predict([]string{"a fine film , well worth seeing ."}); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
		t.Fatalf("config %s loads, but Predict fails: %v", b, err)
	}
}
