package distill

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
	"github.com/sentibench/sentibench/train"
)

// TestTeacherEncoderMoved (issue 21): a bigru teacher whose encoder directory has moved since it
// was trained is refused before any work, by Run and by Resume: an error naming the directory,
// no student run directory made, the teacher never loaded, no logits computed.
func TestTeacherEncoderMoved(t *testing.T) {
	enc := testutil.CopyDir(t, testutil.Shared(t, "models/bert-uncased-random-L2-H32"))
	t.Setenv("SENTIBENCH_CACHE", t.TempDir())
	tc := smallConfig("bigru")
	tc.Encoder, tc.Epochs, tc.Limit = enc, 1, 30
	tc.RunDir = filepath.Join(t.TempDir(), "bigru")
	if _, err := train.Run(context.Background(), tc, quietHooks().Hooks); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(enc, enc+"-moved"); err != nil {
		t.Fatal(err)
	}
	hooks := quietHooks()
	hooks.OpenTeacher = func(string, train.LoadOptions) (Teacher, error) {
		t.Error("the teacher was loaded")
		return nil, errors.New("no teacher")
	}
	want := "distill: teacher run: train: " + tc.RunDir + ": the run's encoder " + enc + " does not exist: was it moved"

	cfg := smallDistill(t, filepath.Join(t.TempDir(), "student"))
	cfg.Teacher = tc.RunDir
	cfg.Student.Limit, cfg.Student.Epochs = 30, 1
	if _, err := Run(context.Background(), cfg, hooks); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Run: %v\nwant %q", err, want)
	}
	if _, err := os.Stat(cfg.RunDir); err == nil {
		t.Errorf("the refused distillation made %s", cfg.RunDir)
	}

	// A distillation begun while the encoder was in place, resumed after it moved.
	dir := t.TempDir()
	cfg.RunDir = dir
	if err := writeSettings(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := Resume(context.Background(), dir, hooks); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Resume: %v\nwant %q", err, want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the refused resume left %d files in %s, want %s alone", len(entries), dir, SettingsFile)
	}
}

// TestTeacherLogitsFromFeatures (issue 21): a bigru teacher trained on a feature cache gives its
// logits from the caches: the corpus's, the one it was trained on, reused as it is, and one
// built for the extra texts (unlabelled reviews and augmented copies), which a second distillation reuses. The
// logits are the teacher's over the texts up to the float16 rounding of the cached features; a
// damaged cache (meta.json, index or features missing, empty or not JSON) is rebuilt, giving the
// same logits; a loader whose teacher cannot read features is an error.
func TestTeacherLogitsFromFeatures(t *testing.T) {
	enc := testutil.Shared(t, "models/bert-uncased-random-L2-H32")
	cache := t.TempDir()
	t.Setenv("SENTIBENCH_CACHE", cache)
	tc := smallConfig("bigru")
	tc.Encoder, tc.Epochs, tc.Limit = enc, 1, 30
	tc.RunDir = filepath.Join(t.TempDir(), "bigru")
	if _, err := train.Run(context.Background(), tc, quietHooks().Hooks); err != nil {
		t.Fatal(err)
	}
	caches := func() []string {
		entries, _ := os.ReadDir(filepath.Join(cache, "features"))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	trained := caches()
	if len(trained) != 1 {
		t.Fatalf("the teacher left caches %v, want one", trained)
	}

	var loads atomic.Int64
	hooks := quietHooks()
	hooks.OpenTeacher = func(dir string, o train.LoadOptions) (Teacher, error) {
		loads.Add(1)
		return LoadTeacher(dir, o)
	}
	cfg := smallDistill(t, filepath.Join(t.TempDir(), "student"))
	cfg.Teacher = tc.RunDir
	cfg.Student.Limit, cfg.Student.Epochs = 30, 1
	cfg.Augment.Copies = 1
	cfg.Unsup, cfg.UnsupLimit = unsupArchive(t, 12), 8
	cfg, _, err := cfg.resolved()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ts, err := buildTransfer(ctx, cfg, hooks.Hooks)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	open := func() (Teacher, error) { return hooks.OpenTeacher(cfg.Teacher, train.LoadOptions{Threads: 2}) }
	got, err := teacherLogits(ctx, dir, cfg, ts, 1, open, hooks.Hooks)
	if err != nil {
		t.Fatal(err)
	}
	if now := caches(); len(now) != 2 || !slices.Contains(now, trained[0]) {
		t.Errorf("caches after the distillation: %v, want the teacher's %s and the extras'", now, trained[0])
	}

	// The same logits as the teacher's over the texts, up to the features' float16 rounding.
	p, err := train.Load(tc.RunDir, train.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	want, err := p.Logits(ts.texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) != ts.train+ts.unsup+ts.augmented || ts.unsup != 8 || ts.augmented == 0 {
		t.Fatalf("%d logits, want %d (%d train + %d unlabelled + %d augmented)", len(got), len(want), ts.train, ts.unsup, ts.augmented)
	}
	for k := range got {
		if d := math.Abs(float64(got[k] - want[k])); d > 2e-3*(1+math.Abs(float64(want[k]))) {
			t.Errorf("transfer example %d: logit %v from the features, %v from the text", k, got[k], want[k])
		}
	}

	// A second distillation reuses both caches and gives the same logits, bit for bit.
	before := loads.Load()
	again, err := teacherLogits(ctx, t.TempDir(), cfg, ts, 1, open, hooks.Hooks)
	if err != nil || !slices.Equal(again, got) {
		t.Errorf("the second distillation's logits differ (%v)", err)
	}
	if now := caches(); len(now) != 2 {
		t.Errorf("caches after the second distillation: %v, want the same two", now)
	}
	if loads.Load() != before+1 {
		t.Errorf("the teacher was loaded %d times for one computation", loads.Load()-before)
	}

	// A teacher trained on one cache directory (--feature-cache naming it): that cache serves
	// the train reviews, and the extras' cache is the one beside it, not a new one inside.
	one := filepath.Join(cache, "features", trained[0])
	tc2 := tc
	tc2.FeatureCache, tc2.RunDir = one, filepath.Join(t.TempDir(), "bigru-one-cache")
	if _, err := train.Run(ctx, tc2, quietHooks().Hooks); err != nil {
		t.Fatal(err)
	}
	cfg2 := cfg
	cfg2.Teacher = tc2.RunDir
	open2 := func() (Teacher, error) { return LoadTeacher(tc2.RunDir, train.LoadOptions{Threads: 2}) }
	if _, err := teacherLogits(ctx, t.TempDir(), cfg2, ts, 1, open2, hooks.Hooks); err != nil {
		t.Fatal(err)
	}
	if now := caches(); len(now) != 2 {
		t.Errorf("caches after a teacher of one cache directory: %v, want the same two", now)
	}
	if entries, _ := os.ReadDir(one); slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.IsDir() }) {
		t.Errorf("a cache was built inside %s", one)
	}

	// A damaged cache, the teacher's or the extras': a cache is rebuilt from the texts, so the
	// distillation rebuilds it and goes on with the same logits, bit for bit; no panic, no error.
	for _, d := range []struct{ name, file, content string }{
		{"meta.json not JSON", "meta.json", "{"},
		{"features empty", "features.f16", ""},
		{"features missing", "features.f16", "-"},
		{"index missing", "index.bin", "-"},
	} {
		for _, name := range caches() {
			p := filepath.Join(cache, "features", name, d.file)
			saved, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if d.content == "-" {
				err = os.Remove(p)
			} else {
				err = os.WriteFile(p, []byte(d.content), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			again, err := teacherLogits(ctx, t.TempDir(), cfg, ts, 1, open, hooks.Hooks)
			if err != nil || !slices.Equal(again, got) {
				t.Errorf("%s of %s: the logits differ after the rebuild (%v)", d.name, name, err)
			}
			if now, err := os.ReadFile(p); err != nil || !bytes.Equal(now, saved) {
				t.Errorf("%s of %s: %s was not rebuilt as it was (%v)", d.name, name, d.file, err)
			}
		}
	}

	// A loader whose teacher reads texts only.
	textOnly := func() (Teacher, error) { return textTeacher{p}, nil }
	if _, err := teacherLogits(ctx, t.TempDir(), cfg, ts, 1, textOnly, hooks.Hooks); err == nil || !strings.Contains(err.Error(), "reads encoder features") {
		t.Errorf("a teacher without LogitsOfFeatures: %v", err)
	}
}

// textTeacher hides a Predictor's LogitsOfFeatures.
type textTeacher struct{ p *train.Predictor }

func (t textTeacher) Logits(texts []string) ([]float32, error) { return t.p.Logits(texts) }
