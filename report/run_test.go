package report

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/safetensors"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/train"
)

// runSpec describes a run directory for a test to write.
type runSpec struct {
	model     string
	dropout   float64
	device    string
	planned   int     // epochs the run was set to do
	done      int     // epochs in the log
	finished  bool    // the log has its final record
	seconds   float64 // epoch time of epoch 1 (later ones a little faster)
	rssMiB    float64
	rssMethod string
	gpuMiB    float64 // 0 on the CPU
}

// modelTensors is a small cnn-shaped checkpoint (vocabulary 1,002) and its number of weights.
func modelTensors(t *testing.T) ([]safetensors.Tensor, int) {
	t.Helper()
	shapes := []struct {
		name  string
		shape []int
	}{
		{"embedding.weight", []int{1002, 100}},
		{"convs.0.weight", []int{100, 100, 3}}, {"convs.0.bias", []int{100}},
		{"convs.1.weight", []int{100, 100, 4}}, {"convs.1.bias", []int{100}},
		{"convs.2.weight", []int{100, 100, 5}}, {"convs.2.bias", []int{100}},
		{"fc.weight", []int{1, 300}}, {"fc.bias", []int{1}},
	}
	var ts []safetensors.Tensor
	total := 0
	for i, s := range shapes {
		n := 1
		for _, d := range s.shape {
			n *= d
		}
		v := make([]float32, n)
		for j := range v {
			v[j] = float32((j*7+i)%13-6) / 100
		}
		ts = append(ts, safetensors.FromFloat32(s.name, s.shape, v))
		total += n
	}
	return ts, total
}

// writeRun writes a run directory as the trainer does: config.json, run.jsonl, the best and
// last checkpoints and the vocabulary. It returns the number of weights.
func writeRun(t *testing.T, dir string, s runSpec) int {
	t.Helper()
	for _, d := range []string{dir, filepath.Join(dir, "best"), filepath.Join(dir, "last")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ts, params := modelTensors(t)
	for _, p := range []string{BestCheckpoint, LastCheckpoint} {
		if err := safetensors.WriteFile(filepath.Join(dir, p), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := map[string]any{
		"model": nn.Config{Kind: s.model, VocabSize: 1002, PadID: 1, EmbedDim: 100, Filters: 100,
			Widths: []int{3, 4, 5}, Dropout: s.dropout, Outputs: 1},
		"device": s.device, "epochs": s.planned, "batch_size": 64, "seed": 1234,
		"data": map[string]any{"archive": "aclImdb_v1_labelled.tar.gz", "limit": nil},
	}
	writeJSON(t, filepath.Join(dir, ConfigFile), cfg)
	if err := os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte("<unk>\n<pad>\nthe\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var lines []string
	add := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	bestEpoch, bestLoss, bestAcc := 0, math.Inf(1), 0.0
	shift := 0.04 * (0.5 - s.dropout) // runs differ a little, as real ones do
	if s.model == "lstm" {
		shift += 0.02
	}
	for e := 1; e <= s.done; e++ {
		f := float64(e)
		rec := train.EpochRecord{
			Epoch: e, TrainLoss: 0.62 - 0.12*f - shift, TrainAcc: 0.66 + 0.06*f + shift,
			ValidLoss: 0.45 - 0.05*f + 0.012*f*f - shift, ValidAcc: 0.80 + 0.03*f - 0.005*f*f + shift,
			TrainBatches: 274, TrainSeconds: 0.9 * (s.seconds - 0.5*f), ValidSeconds: 0.1 * (s.seconds - 0.5*f),
			EpochStats: train.EpochStats{
				Seconds:      s.seconds - 0.5*f,
				PhaseSeconds: map[string]float64{"data": 0.5, "forward": 12, "backward": 20, "optimizer": 1, "valid": 4.5},
				PeakRSSMiB:   s.rssMiB - 10*f, PeakRSSMethod: s.rssMethod, PeakHeapMiB: 0.6 * s.rssMiB,
				PeakGPUMiB: s.gpuMiB, Tokens: 4_000_000, TokensPerSecond: 4e6 / (0.9 * (s.seconds - 0.5*f)),
				GFLOPS: 12.5,
			},
		}
		if s.gpuMiB > 0 {
			rec.GPUUsedMiB, rec.GPUTotalMiB = s.gpuMiB+600, 81559
		}
		if rec.ValidLoss < bestLoss {
			bestEpoch, bestLoss, bestAcc = e, rec.ValidLoss, rec.ValidAcc
		}
		add(rec)
	}
	if s.finished {
		add(train.FinalRecord{
			TestLoss: bestLoss + 0.01, TestAcc: bestAcc - 0.004, BestEpoch: bestEpoch,
			BestValidLoss: bestLoss, BestValidAcc: bestAcc, TotalSeconds: float64(s.done) * s.seconds,
			TestSeconds: 9, PeakRSSMiB: s.rssMiB + 300, PeakGPUMiB: s.gpuMiB,
			Model: s.model, Dropout: s.dropout, Params: params, Epochs: s.planned, BatchSize: 64,
			Seed: 1234, Device: s.device, Threads: 2,
			Sizes: map[string]int{"train": 17500, "valid": 7500, "test": 25000}, Version: "dev",
		})
	}
	text := strings.Join(lines, "\n")
	if len(lines) > 0 {
		text += "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, train.RunLogFile), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return params
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

var cnnFinished = runSpec{model: "cnn", dropout: 0.5, device: "cpu", planned: 5, done: 5, finished: true,
	seconds: 48, rssMiB: 1200, rssMethod: "vmhwm"}

func TestLoadRunFinished(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cnn-d0.5-cpu")
	params := writeRun(t, dir, cnnFinished)
	r, err := LoadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "cnn-d0.5-cpu" || len(r.Epochs) != 5 || r.Final == nil {
		t.Fatalf("name %q, %d epochs, final %v", r.Name, len(r.Epochs), r.Final)
	}
	st, err := os.Stat(filepath.Join(dir, BestCheckpoint))
	if err != nil {
		t.Fatal(err)
	}
	if r.CheckpointBytes != st.Size() || r.CheckpointBytes < int64(4*params) {
		t.Errorf("CheckpointBytes %d, file is %d bytes (%d weights)", r.CheckpointBytes, st.Size(), params)
	}
	if r.Config.Model.Kind != "cnn" || r.Config.Device != "cpu" || r.Config.Epochs != 5 || r.Config.BatchSize != 64 {
		t.Errorf("config %+v", r.Config)
	}
	if r.Config.Dropout == nil || *r.Config.Dropout != 0.5 {
		t.Errorf("config dropout %v, want 0.5", r.Config.Dropout)
	}
	if r.Framework != "sentibench dev" {
		t.Errorf("framework %q", r.Framework)
	}
	if e := r.Epochs[2]; e.Epoch != 3 || e.PhaseSeconds["backward"] != 20 || e.PeakRSSMethod != "vmhwm" || e.TokensPerSecond == 0 {
		t.Errorf("epoch 3 read as %+v", e)
	}

	s := Summarize(r)
	if s.Params != params || s.Model != "cnn" || s.Device != "cpu" || s.Dropout != 0.5 || !s.Finished {
		t.Errorf("summary %+v", s)
	}
	if s.BestEpoch != r.Final.BestEpoch || s.BestValidAcc != r.Final.BestValidAcc || s.TestAcc != r.Final.TestAcc {
		t.Errorf("best epoch %d acc %v test %v; final says %d, %v, %v", s.BestEpoch, s.BestValidAcc, s.TestAcc,
			r.Final.BestEpoch, r.Final.BestValidAcc, r.Final.TestAcc)
	}
	if want := 48 - 0.5*3; math.Abs(s.MeanEpochSeconds-want) > 1e-9 {
		t.Errorf("mean epoch %v s, want %v", s.MeanEpochSeconds, want)
	}
	// The per-epoch peak (epoch 1's 1190 MiB), not the final record's whole-run figure.
	if s.PeakRSSMiB != 1190 || s.PeakRSSMethod != "vmhwm" {
		t.Errorf("peak RSS %v (%s), want 1190 (vmhwm)", s.PeakRSSMiB, s.PeakRSSMethod)
	}
	if !math.IsNaN(s.PeakGPUMiB) {
		t.Errorf("peak GPU %v on the CPU, want NaN", s.PeakGPUMiB)
	}
}

func TestLoadRunUnfinished(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lstm-gpu")
	params := writeRun(t, dir, runSpec{model: "lstm", dropout: 0.2, device: "cuda", planned: 5, done: 2,
		seconds: 30, rssMiB: 2000, rssMethod: "vmhwm", gpuMiB: 3100})
	r, err := LoadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Final != nil || len(r.Epochs) != 2 {
		t.Fatalf("final %v, %d epochs", r.Final, len(r.Epochs))
	}
	s := Summarize(r)
	if s.Finished || s.Epochs != 2 || s.EpochsPlanned != 5 || !math.IsNaN(s.TestAcc) {
		t.Errorf("summary %+v", s)
	}
	if s.Params != params {
		t.Errorf("params %d (from the checkpoint), want %d", s.Params, params)
	}
	// valid loss by epoch: 0.412, 0.398: epoch 2 is best.
	if s.BestEpoch != 2 || s.BestValidAcc != r.Epochs[1].ValidAcc {
		t.Errorf("best epoch %d (acc %v), want 2", s.BestEpoch, s.BestValidAcc)
	}
	if s.PeakGPUMiB != 3100 || s.Model != "lstm" || s.Device != "cuda" || s.Dropout != 0.2 {
		t.Errorf("summary %+v", s)
	}

	// A run that has only just started: an empty log, no checkpoint yet.
	fresh := filepath.Join(t.TempDir(), "fresh")
	writeRun(t, fresh, runSpec{model: "cnn", planned: 5})
	os.RemoveAll(filepath.Join(fresh, "best"))
	r, err = LoadRun(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if s := Summarize(r); s.Epochs != 0 || s.Params != 0 || s.CheckpointBytes != 0 || !math.IsNaN(s.MeanEpochSeconds) {
		t.Errorf("fresh run summary %+v", s)
	}
}

// config.json is read loosely: extra keys, keys of another type, a model given as a string.
func TestLoadRunLooseConfig(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, dir, cnnFinished)
	writeJSON(t, filepath.Join(dir, ConfigFile), map[string]any{
		"model": "bigru", "device": 3, "epochs": "five", "dropout": 0.25, "new_key": []int{1},
	})
	r, err := LoadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Config
	if c.Model.Kind != "bigru" || c.Device != "" || c.Epochs != 0 || c.Dropout == nil || *c.Dropout != 0.25 || c.Raw["new_key"] == nil {
		t.Errorf("config %+v", c)
	}
	// No config.json at all.
	os.Remove(filepath.Join(dir, ConfigFile))
	if _, err := LoadRun(dir); err != nil {
		t.Errorf("without config.json: %v", err)
	}
}

func TestLoadRunErrors(t *testing.T) {
	base := t.TempDir()
	good := func(name string) string {
		dir := filepath.Join(base, name)
		writeRun(t, dir, cnnFinished)
		return dir
	}
	setLog := func(dir string, edit func(lines []string) []string) {
		p := filepath.Join(dir, train.RunLogFile)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := edit(strings.Split(strings.TrimRight(string(b), "\n"), "\n"))
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		setup func() string
		want  []string // substrings of the error
	}{
		{"missing", func() string { return filepath.Join(base, "nope") }, []string{"nope", "no such file"}},
		{"not a run", func() string {
			d := filepath.Join(base, "empty")
			os.MkdirAll(d, 0o755)
			return d
		}, []string{"empty", "not a run directory", "run.jsonl"}},
		{"corrupt line", func() string {
			d := good("corrupt")
			setLog(d, func(l []string) []string { l[2] = l[2][:len(l[2])/2]; return l })
			return d
		}, []string{filepath.Join("corrupt", "run.jsonl") + ":3:", "not a JSON object"}},
		{"wrong type", func() string {
			d := good("wrongtype")
			setLog(d, func(l []string) []string { l[1] = strings.Replace(l[1], `"epoch":2`, `"epoch":"2"`, 1); return l })
			return d
		}, []string{"run.jsonl:2:", "epoch record", "string"}},
		{"after final", func() string {
			d := good("afterfinal")
			setLog(d, func(l []string) []string { return append(l, l[0]) })
			return d
		}, []string{"run.jsonl:7:", "after the final record"}},
		{"unknown record", func() string {
			d := good("unknown")
			setLog(d, func(l []string) []string { l[0] = `{"loss": 1}`; return l })
			return d
		}, []string{"run.jsonl:1:", "neither an epoch record"}},
		{"bad epoch", func() string {
			d := good("badepoch")
			setLog(d, func(l []string) []string { l[0] = `{"epoch": 0}`; return l })
			return d
		}, []string{"run.jsonl:1:", "epoch 0"}},
		{"corrupt config", func() string {
			d := good("badconfig")
			os.WriteFile(filepath.Join(d, ConfigFile), []byte(`{"model": {`), 0o644)
			return d
		}, []string{filepath.Join("badconfig", "config.json"), "not a JSON object"}},
		{"corrupt checkpoint", func() string {
			d := filepath.Join(base, "badckpt")
			writeRun(t, d, runSpec{model: "cnn", planned: 5, done: 1, seconds: 10})
			os.WriteFile(filepath.Join(d, BestCheckpoint), []byte("not safetensors"), 0o644)
			return d
		}, []string{filepath.Join("badckpt", "best", "model.safetensors")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadRun(c.setup())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestLoadRunsUniqueNames(t *testing.T) {
	base := t.TempDir()
	a, b := filepath.Join(base, "h100", "cnn"), filepath.Join(base, "cpu", "cnn")
	c := filepath.Join(base, "lstm")
	for _, d := range []string{a, b, c} {
		writeRun(t, d, cnnFinished)
	}
	runs, err := LoadRuns([]string{a, b, c, c})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range runs {
		names = append(names, r.Name)
	}
	want := []string{"h100/cnn", "cpu/cnn", "lstm", "lstm#2"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("names %q, want %q", names, want)
	}
}

// A log written by ../shared/bench/torch_ref.py --json (testdata/torch_cnn.jsonl, see
// testdata/README.md) reads as a run of its own.
func TestLoadRunTorchRefLog(t *testing.T) {
	r, err := LoadRun(filepath.Join("testdata", "torch_cnn.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "torch_cnn" || len(r.Epochs) != 3 || r.Final == nil {
		t.Fatalf("name %q, %d epochs, final %v", r.Name, len(r.Epochs), r.Final)
	}
	if r.Framework != "torch 2.15.0" {
		t.Errorf("framework %q, want torch 2.15.0", r.Framework)
	}
	s := Summarize(r)
	if s.Model != "cnn" || s.Device != "cpu" || s.Dropout != 0.5 || s.Params != 1_009_901 || !s.Finished {
		t.Errorf("summary %+v", s)
	}
	if s.PeakRSSMethod != "ru_maxrss" || !(s.PeakRSSMiB > 100) || !(s.MeanEpochSeconds > 0) || !(s.TokensPerSecond > 0) {
		t.Errorf("rss %v (%s), epoch %v s, %v tokens/s", s.PeakRSSMiB, s.PeakRSSMethod, s.MeanEpochSeconds, s.TokensPerSecond)
	}
	if s.TestAcc != 0.5125 || s.BestEpoch != 2 || s.BestValidAcc != r.Epochs[1].ValidAcc {
		t.Errorf("test acc %v, best epoch %d (valid acc %v)", s.TestAcc, s.BestEpoch, s.BestValidAcc)
	}
}
