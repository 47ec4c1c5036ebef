package distill

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/safetensors"
	"github.com/sentibench/sentibench/internal/testutil"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/train"
)

// The end-to-end tests train a tiny cnn teacher on the bundled sample once (TestMain), and
// distil tiny students from it.

// teacherDir is the fixture teacher's run directory, made by TestMain.
var teacherDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "distill-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cfg := smallConfig("cnn")
	cfg.Epochs = 4
	cfg.Filters = 24
	cfg.RunDir = filepath.Join(dir, "teacher")
	if _, err := train.Run(context.Background(), cfg, quietHooks().Hooks); err != nil {
		fmt.Fprintln(os.Stderr, "training the teacher:", err)
		return 1
	}
	teacherDir = cfg.RunDir
	return m.Run()
}

// smallConfig is a run of a few seconds on the bundled sample (as train's tests have it).
func smallConfig(model string) train.Config {
	cfg := train.DefaultConfig(model)
	cfg.Data = "sample"
	cfg.Limit = 60
	cfg.Epochs = 3
	cfg.BatchSize = 16
	cfg.VocabSize = 2000
	cfg.EmbedDim = 16
	cfg.Filters = 8
	cfg.Hidden = 12
	cfg.Dropout = 0.3
	cfg.Threads = 2
	return cfg
}

func quietHooks() Hooks { return Hooks{Hooks: train.Hooks{Log: io.Discard, Progress: io.Discard}} }

// smallDistill is a distillation of the fixture teacher into a tiny cnn.
func smallDistill(t *testing.T, dir string) Config {
	cfg := DefaultConfig(teacherDir, "cnn")
	cfg.Student = smallConfig("cnn")
	cfg.Student.Filters = 6
	cfg.Student.Data = "" // the teacher's
	cfg.TeacherBatch = 16
	cfg.ThroughputReviews = 0
	cfg.RunDir = dir
	return cfg
}

// countingTeacher counts the teacher's calls and, when cancel is set, cancels after
// cancelAfter calls.
type countingTeacher struct {
	Teacher
	calls       *atomic.Int64
	cancelAfter int64
	cancel      func()
}

func (c countingTeacher) Logits(texts []string) ([]float32, error) {
	n := c.calls.Add(1)
	if c.cancel != nil && n == c.cancelAfter {
		c.cancel()
	}
	return c.Teacher.Logits(texts)
}

// LogitsOfFeatures counts a call, and runs the teacher when it reads features.
func (c countingTeacher) LogitsOfFeatures(in *nn.Input) ([]float32, error) {
	c.calls.Add(1)
	ft, ok := c.Teacher.(FeatureTeacher)
	if !ok {
		return nil, errors.New("the teacher reads texts")
	}
	return ft.LogitsOfFeatures(in)
}

// counting returns hooks whose teacher counts its calls into calls.
func counting(calls *atomic.Int64) Hooks {
	h := quietHooks()
	h.OpenTeacher = func(dir string, o train.LoadOptions) (Teacher, error) {
		t, err := LoadTeacher(dir, o)
		return countingTeacher{Teacher: t, calls: calls}, err
	}
	return h
}

// unsupArchive writes a gzip-compressed tar in the official layout
// (aclImdb/train/unsup/<id>_0.txt) holding n real reviews of the sample (its test part: the
// tests only need texts without labels).
func unsupArchive(t *testing.T, n int) string {
	t.Helper()
	c, err := data.Load(context.Background(), data.Options{Path: "sample", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "unsup.tar.gz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for k := 0; k < n; k++ {
		text := c.Examples[c.Test[k*7%len(c.Test)]].Text
		hdr := &tar.Header{Name: fmt.Sprintf("aclImdb/train/unsup/%d_0.txt", k), Mode: 0o644, Size: int64(len(text))}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, text); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDistillEndToEnd distils with every part of the transfer set (train, unlabelled reviews
// from an archive, augmented copies), trains the baseline, and checks the run directory, the
// cache (written once, reused on resume) and the report.
func TestDistillEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "student")
	cfg := smallDistill(t, dir)
	cfg.Unsup = unsupArchive(t, 30)
	cfg.UnsupLimit = 20
	cfg.Augment.Copies = 1
	cfg.TrainBaseline = true
	cfg.ThroughputReviews = 40
	var calls atomic.Int64
	res, err := Run(context.Background(), cfg, counting(&calls))
	if err != nil {
		t.Fatal(err)
	}
	// 84 train reviews + 20 unlabelled + 84 augmented = 188, in batches of 16.
	const transfer = 84 + 20 + 84
	if got, want := calls.Load(), int64((transfer+15)/16); got != want {
		t.Errorf("the teacher ran %d batches, want %d", got, want)
	}
	info, err := train.ReadRunInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != Kind || info.Sizes["train"] != transfer || info.Model.Filters != 6 {
		t.Errorf("config.json: kind %q, %d training examples, %d filters; want %q, %d, 6", info.Kind, info.Sizes["train"], info.Model.Filters, Kind, transfer)
	}
	c, err := readCache(filepath.Join(dir, LogitsFile))
	if err != nil || c == nil {
		t.Fatalf("cache: %v, %v", c, err)
	}
	if len(c.logits) != transfer || c.done != transfer {
		t.Errorf("cache: %d logits, %d done; want %d", len(c.logits), c.done, transfer)
	}
	for k, z := range c.logits {
		if math.IsNaN(float64(z)) {
			t.Fatalf("cache: logit %d is NaN", k)
		}
	}
	// The cached logits are the teacher's own (eval mode) for the train reviews.
	p, err := train.Load(teacherDir, train.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := data.Load(context.Background(), data.Options{Path: "sample", Limit: 60, Seed: cfg.Student.Seed})
	if err != nil {
		t.Fatal(err)
	}
	want, err := p.Logits([]string{tc.Examples[tc.Train[0]].Text, tc.Examples[tc.Train[5]].Text})
	if err != nil {
		t.Fatal(err)
	}
	if c.index[0] != int64(tc.Train[0]) || !near(float64(c.logits[0]), float64(want[0]), 1e-5) || !near(float64(c.logits[5]), float64(want[1]), 1e-5) {
		t.Errorf("cache: index %d logits %v %v; want index %d, logits %v", c.index[0], c.logits[0], c.logits[5], tc.Train[0], want)
	}
	if c.index[84] != int64(len(tc.Examples)) {
		t.Errorf("the first unlabelled review has dataset index %d, want %d (after the labelled ones)", c.index[84], len(tc.Examples))
	}

	// The report: three rows, the gap, the files.
	rep := res.Report
	if len(rep.Rows) != 3 || res.Baseline == nil {
		t.Fatalf("report has %d rows (baseline %v), want 3", len(rep.Rows), res.Baseline)
	}
	for _, row := range rep.Rows {
		if row.TestAcc <= 0 || row.Params <= 0 || row.CheckpointBytes <= 0 || row.ReviewsPerSec <= 0 {
			t.Errorf("row %+v lacks figures", row)
		}
	}
	if rep.Rows[1].TestAcc != res.Student.TestAcc || rep.Rows[2].TestAcc != res.Baseline.TestAcc {
		t.Errorf("report accuracies %v, %v; run logs %v, %v", rep.Rows[1].TestAcc, rep.Rows[2].TestAcc, res.Student.TestAcc, res.Baseline.TestAcc)
	}
	if rep.Rows[0].Params <= rep.Rows[1].Params || rep.Rows[1].Params != rep.Rows[2].Params {
		t.Errorf("params: teacher %d, distilled %d, alone %d", rep.Rows[0].Params, rep.Rows[1].Params, rep.Rows[2].Params)
	}
	if t0, d, a := rep.Rows[0].TestAcc, rep.Rows[1].TestAcc, rep.Rows[2].TestAcc; t0 > a {
		if want := (d - a) / (t0 - a); rep.GapClosed != want {
			t.Errorf("gap closed %v, want %v", rep.GapClosed, want)
		}
	} else if !math.IsNaN(rep.GapClosed) {
		t.Errorf("gap closed %v with a teacher no better than the baseline", rep.GapClosed)
	}
	md, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| teacher | cnn (emb 16, 3x24 filters) |", "| distilled student | cnn (emb 16, 3x6 filters) |", "| student alone |", "reviews/s",
		"transfer set 84 train + 20 unlabelled + 84 augmented reviews", "KD (Hinton et al.), T 2, alpha 0.5"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("%s lacks %q:\n%s", ReportFile, want, md)
		}
	}
	var s settings
	if b, err := os.ReadFile(filepath.Join(dir, SettingsFile)); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Teacher != teacherDir || s.Unsup != cfg.Unsup || s.Augment.Copies != 1 || s.Student.Data != "sample" {
		t.Errorf("%s: %+v", SettingsFile, s)
	}

	// A plain resume refuses the distilled run; a distill resume reuses everything.
	if _, err := train.Resume(context.Background(), dir, quietHooks().Hooks); err == nil {
		t.Error("train.Resume continued a distilled run without its teacher")
	}
	calls.Store(0)
	again, err := Resume(context.Background(), dir, counting(&calls))
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 0 {
		t.Errorf("the resume ran the teacher %d times; the cache should have served", calls.Load())
	}
	if again.Train != nil || again.Student.TestAcc != res.Student.TestAcc || again.Student.TestLoss != res.Student.TestLoss ||
		again.Baseline.TestAcc != res.Baseline.TestAcc || again.Report.Rows[2].TestAcc != rep.Rows[2].TestAcc {
		t.Errorf("the resume of a finished run trained again or changed its results")
	}
}

// TestDistillResumeAfterInterrupt stops a distillation in the middle of the student's
// training (a cancelled context, as SIGINT does in the CLI) and resumes it: same figures, bit
// for bit, and the teacher is not run again.
func TestDistillResumeAfterInterrupt(t *testing.T) {
	for _, loss := range []string{LossKD, LossMSE} {
		t.Run(loss, func(t *testing.T) {
			cfg := smallDistill(t, filepath.Join(t.TempDir(), "reference"))
			cfg.Loss, cfg.Alpha, cfg.Temperature = loss, 0.3, 3
			want, err := Run(context.Background(), cfg, quietHooks())
			if err != nil {
				t.Fatal(err)
			}
			cfg.RunDir = filepath.Join(t.TempDir(), "stopped")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var calls atomic.Int64
			hooks := counting(&calls)
			hooks.Meter = &cancelAfter{n: 7, cancel: cancel} // inside epoch 2 (6 batches each)
			if _, err := Run(ctx, cfg, hooks); !errors.Is(err, train.ErrInterrupted) {
				t.Fatalf("got %v, want ErrInterrupted", err)
			}
			first := calls.Load()
			got, err := Resume(context.Background(), cfg.RunDir, counting(&calls))
			if err != nil {
				t.Fatal(err)
			}
			if calls.Load() != first {
				t.Errorf("the resume ran the teacher %d more times", calls.Load()-first)
			}
			if got.Train == nil || len(got.Train.Epochs) != len(want.Train.Epochs) {
				t.Fatalf("resumed run: %+v", got.Train)
			}
			for i, w := range want.Train.Epochs {
				g := got.Train.Epochs[i]
				if w.TrainLoss != g.TrainLoss || w.TrainAcc != g.TrainAcc || w.ValidLoss != g.ValidLoss || w.ValidAcc != g.ValidAcc {
					t.Errorf("epoch %d: got %v/%v %v/%v, want %v/%v %v/%v", w.Epoch, g.TrainLoss, g.TrainAcc, g.ValidLoss, g.ValidAcc,
						w.TrainLoss, w.TrainAcc, w.ValidLoss, w.ValidAcc)
				}
			}
			if got.Student.TestAcc != want.Student.TestAcc || got.Student.TestLoss != want.Student.TestLoss {
				t.Errorf("test: got %v/%v, want %v/%v", got.Student.TestAcc, got.Student.TestLoss, want.Student.TestAcc, want.Student.TestLoss)
			}
		})
	}
}

// cancelAfter is a Meter that cancels the run's context after n training batches.
type cancelAfter struct {
	train.WallClock
	n, seen int
	cancel  func()
}

func (c *cancelAfter) AddWork(tokens int, flops float64) {
	c.WallClock.AddWork(tokens, flops)
	c.seen++
	if c.seen == c.n {
		c.cancel()
	}
}

// TestTeacherLogitsInterrupted stops the teacher's pass over the transfer set after two
// batches: the partial cache keeps them, the resume computes only the rest, and the logits
// are those of an uninterrupted pass. A changed cache key makes the resume compute them all.
func TestTeacherLogitsInterrupted(t *testing.T) {
	ref := smallDistill(t, filepath.Join(t.TempDir(), "reference"))
	ref.Student.Epochs = 1
	if _, err := Run(context.Background(), ref, quietHooks()); err != nil {
		t.Fatal(err)
	}
	want, err := readCache(filepath.Join(ref.RunDir, LogitsFile))
	if err != nil {
		t.Fatal(err)
	}

	cfg := ref
	cfg.RunDir = filepath.Join(t.TempDir(), "stopped")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int64
	hooks := quietHooks()
	hooks.OpenTeacher = func(dir string, o train.LoadOptions) (Teacher, error) {
		p, err := LoadTeacher(dir, o)
		return countingTeacher{Teacher: p, calls: &calls, cancelAfter: 2, cancel: cancel}, err
	}
	if _, err := Run(ctx, cfg, hooks); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	part, err := readCache(filepath.Join(cfg.RunDir, LogitsFile))
	if err != nil || part == nil || part.done != 32 {
		t.Fatalf("partial cache: %+v, %v; want 32 done", part, err)
	}
	calls.Store(0)
	if _, err := Resume(context.Background(), cfg.RunDir, counting(&calls)); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 4 { // 84 reviews: 6 batches of 16, 2 done before
		t.Errorf("the resume ran %d teacher batches, want 4", got)
	}
	got, err := readCache(filepath.Join(cfg.RunDir, LogitsFile))
	if err != nil {
		t.Fatal(err)
	}
	if got.key != want.key || !equalFloats(got.logits, want.logits) {
		t.Errorf("resumed logits differ from an uninterrupted pass")
	}

	// A cache computed from something else (here: its key altered) is computed again.
	got.key = strings.Repeat("0", 64)
	if err := got.write(filepath.Join(cfg.RunDir, LogitsFile), teacherDir); err != nil {
		t.Fatal(err)
	}
	calls.Store(0)
	if _, err := Resume(context.Background(), cfg.RunDir, counting(&calls)); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 6 {
		t.Errorf("with a stale cache the teacher ran %d batches, want all 6", got)
	}
	if again, _ := readCache(filepath.Join(cfg.RunDir, LogitsFile)); again == nil || again.key != want.key {
		t.Errorf("the recomputed cache has key %v, want %s", again, want.key)
	}
}

func equalFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCacheKey: the key changes with the teacher's weights, the texts and the augmentation.
func TestCacheKey(t *testing.T) {
	ts := &transferSet{n: 3, index: []int{0, 2, 3}, texts: []string{"a good film", "bad", "fine"}}
	k0, err := cacheKey(teacherDir, ts, DefaultAugment(), 64, sourceTexts)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := cacheKey(teacherDir, ts, DefaultAugment(), 64, sourceTexts); k != k0 {
		t.Error("the key is not deterministic")
	}
	changed := *ts
	changed.texts = []string{"a good film", "bad", "fine!"}
	aug := DefaultAugment()
	aug.Copies = 2
	for name, k := range map[string]func() (string, error){
		"text":    func() (string, error) { return cacheKey(teacherDir, &changed, DefaultAugment(), 64, sourceTexts) },
		"augment": func() (string, error) { return cacheKey(teacherDir, ts, aug, 64, sourceTexts) },
		"batch":   func() (string, error) { return cacheKey(teacherDir, ts, DefaultAugment(), 32, sourceTexts) },
		"source":  func() (string, error) { return cacheKey(teacherDir, ts, DefaultAugment(), 64, sourceFeatures) },
	} {
		if got, err := k(); err != nil || got == k0 {
			t.Errorf("changing the %s left the key alone (%v)", name, err)
		}
	}
	// Another teacher: the same run with other best weights.
	other := filepath.Join(t.TempDir(), "teacher")
	copyRun(t, teacherDir, other)
	wpath := filepath.Join(other, train.BestDir, train.WeightsFile)
	f, err := safetensors.Open(wpath)
	if err != nil {
		t.Fatal(err)
	}
	var tensors []safetensors.Tensor
	for _, info := range f.List() {
		v, err := f.Float32(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Name == "fc.bias" {
			v[0] += 0.5
		}
		tensors = append(tensors, safetensors.FromFloat32(info.Name, info.Shape, v))
	}
	f.Close()
	if err := safetensors.WriteFile(wpath, tensors, nil); err != nil {
		t.Fatal(err)
	}
	if k, err := cacheKey(other, ts, DefaultAugment(), 64, sourceTexts); err != nil || k == k0 {
		t.Errorf("other weights, same key (%v)", err)
	}
}

// copyRun copies a run directory's config, vocabulary, run log and best checkpoint.
func copyRun(t *testing.T, from, to string) {
	t.Helper()
	for _, name := range []string{train.ConfigFile, train.VocabFile, train.RunLogFile, filepath.Join(train.BestDir, train.WeightsFile)} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(to, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBadInput: a missing or unfinished teacher, an unknown student and bad settings are
// clear errors, before any work.
func TestBadInput(t *testing.T) {
	unfinished := filepath.Join(t.TempDir(), "unfinished")
	{
		cfg := smallConfig("cnn")
		cfg.RunDir = unfinished
		ctx, cancel := context.WithCancel(context.Background())
		h := quietHooks().Hooks
		h.Meter = &cancelAfter{n: 2, cancel: cancel}
		if _, err := train.Run(ctx, cfg, h); !errors.Is(err, train.ErrInterrupted) {
			t.Fatalf("making an unfinished run: %v", err)
		}
		cancel()
	}
	notRun := t.TempDir()
	emptyLogits := filepath.Join(notRun, "empty.safetensors")
	if err := os.WriteFile(emptyLogits, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := func() string { return filepath.Join(t.TempDir(), "student") }
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"missing teacher", func(c *Config) { c.Teacher = filepath.Join(notRun, "nope") }, "does not exist"},
		{"not a run", func(c *Config) { c.Teacher = notRun }, "is not a run directory"},
		{"unfinished teacher", func(c *Config) { c.Teacher = unfinished }, "has not finished"},
		{"unknown student", func(c *Config) { c.Student.Kind = "transformer" }, `unknown student model "transformer" (want cnn or lstm)`},
		{"bigru student", func(c *Config) { c.Student.Kind = "bigru" }, "must be a word model"},
		{"unknown loss", func(c *Config) { c.Loss = "l1" }, `unknown loss "l1"`},
		{"temperature", func(c *Config) { c.Temperature = 0 }, "temperature 0 must be positive"},
		{"alpha", func(c *Config) { c.Alpha = 1.2 }, "alpha 1.2 is outside [0, 1]"},
		{"alpha 1 with unlabelled", func(c *Config) { c.Alpha, c.Augment.Copies = 1, 2 }, "alpha 1 ignores the teacher"},
		{"copies without change", func(c *Config) { c.Augment = Augment{Copies: 1} }, "unchanged"},
		{"unsup limit alone", func(c *Config) { c.UnsupLimit = 5 }, "a limit of unlabelled reviews needs their archive"},
		{"missing unsup", func(c *Config) { c.Unsup = filepath.Join(notRun, "unsup.tar.gz") }, "unsup.tar.gz"},
		{"unfinished baseline", func(c *Config) { c.Baseline = unfinished }, "baseline run"},
		{"two baselines", func(c *Config) { c.Baseline, c.TrainBaseline = teacherDir, true }, "not both"},
		{"no run dir", func(c *Config) { c.RunDir = "" }, "no run directory"},
		{"run dir taken", func(c *Config) { c.RunDir = teacherDir }, "already holds a run"},
		{"missing teacher logits", func(c *Config) { c.TeacherLogits = filepath.Join(notRun, "gone.safetensors") }, "gone.safetensors: no such file"},
		{"empty teacher logits", func(c *Config) { c.TeacherLogits = emptyLogits }, "empty.safetensors: too short"},
	}
	for _, c := range cases {
		cfg := smallDistill(t, dir())
		c.edit(&cfg)
		_, err := Run(context.Background(), cfg, quietHooks())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
		if strings.Contains(c.name, "teacher logits") {
			if _, err := os.Stat(cfg.RunDir); err == nil {
				t.Errorf("%s: the run directory %s was made", c.name, cfg.RunDir)
			}
		}
	}
	if _, err := Resume(context.Background(), teacherDir, quietHooks()); err == nil || !strings.Contains(err.Error(), "not a distillation run") {
		t.Errorf("resuming a plain run: got %v", err)
	}
}

// TestLSTMStudent distils the cnn teacher into a tiny lstm (one short epoch): any word model
// can learn, and the report describes it.
func TestLSTMStudent(t *testing.T) {
	cfg := smallDistill(t, filepath.Join(t.TempDir(), "lstm"))
	cfg.Student = smallConfig("lstm")
	cfg.Student.Data = ""
	cfg.Student.Epochs, cfg.Student.MaxBatches, cfg.Student.Layers = 1, 2, 1
	cfg.Loss, cfg.Alpha = LossMSE, 0.5
	res, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Report.Rows[1].Model; got != "lstm (emb 16, 1x12 bi)" {
		t.Errorf("student described as %q", got)
	}
	if res.Student.Model != "lstm" || res.Student.TestAcc <= 0 {
		t.Errorf("student: %+v", res.Student)
	}
}

// TestBiGRUTeacher distils a bigru over a frozen encoder (the tiny random BERT of ../shared)
// into a tiny cnn: a feature-model teacher labels the transfer set from its cached encoder
// features.
func TestBiGRUTeacher(t *testing.T) {
	enc := testutil.Shared(t, "models/bert-uncased-random-L2-H32")
	t.Setenv("SENTIBENCH_CACHE", t.TempDir())
	tc := smallConfig("bigru")
	tc.Encoder, tc.Epochs, tc.Limit = enc, 1, 30
	tc.RunDir = filepath.Join(t.TempDir(), "bigru")
	if _, err := train.Run(context.Background(), tc, quietHooks().Hooks); err != nil {
		t.Fatal(err)
	}
	cfg := smallDistill(t, filepath.Join(t.TempDir(), "student"))
	cfg.Teacher = tc.RunDir
	cfg.Student.Limit, cfg.Student.Epochs = 30, 1
	cfg.ThroughputReviews = 16
	var calls atomic.Int64
	res, err := Run(context.Background(), cfg, counting(&calls))
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 { // 42 train reviews in batches of 16
		t.Errorf("the teacher ran %d batches, want 3", calls.Load())
	}
	if got := res.Report.Rows[0].Model; !strings.HasPrefix(got, "bigru (in 32,") {
		t.Errorf("teacher described as %q", got)
	}
	if res.Report.Rows[0].ReviewsPerSec <= 0 || res.Report.Rows[0].TestAcc <= 0 {
		t.Errorf("teacher row %+v", res.Report.Rows[0])
	}
	// The teacher's size counts its encoder: the tiny BERT's parameters and weights file.
	info, err := train.ReadRunInfo(tc.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	head, err := os.Stat(filepath.Join(tc.RunDir, train.BestDir, train.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	encFile, err := os.Stat(filepath.Join(enc, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	row := res.Report.Rows[0]
	if row.Params <= info.Params || row.CheckpointBytes != head.Size()+encFile.Size() || !strings.Contains(row.Note, "frozen encoder "+enc) {
		t.Errorf("teacher row %+v: want the head's %d parameters and more, %d + %d bytes, a note naming the encoder",
			row, info.Params, head.Size(), encFile.Size())
	}
}
