package train

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/testutil"
	"github.com/sentibench/sentibench/nn"
)

// widthGuard runs the steps on the CPU and records the widest batch. It refuses a batch wider
// than limit before the model allocates anything for it, so that a regression fails the test
// instead of asking for gigabytes.
type widthGuard struct {
	cpuEngine
	limit, widest int
}

func (e *widthGuard) Step(in *nn.Input, loss nn.Loss, mode nn.Mode, rng *nn.RNG) (nn.StepResult, error) {
	e.widest = max(e.widest, in.T)
	if in.T > e.limit {
		return nn.StepResult{}, fmt.Errorf("a batch %d tokens wide, more than %d", in.T, e.limit)
	}
	return e.cpuEngine.Step(in, loss, mode, rng)
}

// writeLongReviewTSV writes a TSV file of 100 short reviews and one of longTokens tokens.
func writeLongReviewTSV(t *testing.T, longTokens int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("label\ttext\npos\t")
	b.WriteString(strings.Repeat("great ", longTokens))
	b.WriteString("\n")
	for i := range 100 {
		fmt.Fprintf(&b, "%s\t%s film number %d\n", []string{"neg", "pos"}[i%2], []string{"a dull", "a lovely"}[i%2], i)
	}
	p := filepath.Join(t.TempDir(), "long.tsv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLongReviewTruncated: a review of about a million tokens (a 6 MB line) once padded every
// batch it was in to its length and asked for gigabytes. Training and evaluation now cut it to
// the default bound with a line saying so, record the bound, and stay small.
func TestLongReviewTruncated(t *testing.T) {
	const longTokens = 1 << 20
	path := writeLongReviewTSV(t, longTokens)
	cfg := smallConfig("cnn")
	cfg.Data, cfg.Limit, cfg.Epochs = path, 0, 1
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	var log bytes.Buffer
	hooks := Hooks{Log: &log, Progress: io.Discard}
	guard := &widthGuard{limit: DefaultMaxLen}
	newEngine := func(m nn.Model, opt *nn.Adam) (engine, error) {
		guard.cpuEngine = cpuEngine{m: m, opt: opt, runner: &nn.Runner{}}
		return guard, nil
	}
	if _, err := RunWith(context.Background(), cfg, hooks, Options{newEngine: newEngine}); err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("Data: 1 review longer than 8,192 tokens truncated to their first 8,192 (the longest had %s;", "1,048,576")
	if !strings.Contains(log.String(), line) {
		t.Errorf("the run's log lacks %q:\n%s", line, log.String())
	}
	if guard.widest != DefaultMaxLen {
		t.Errorf("the widest batch was %d tokens, want the bound %d (the long review is in some split)", guard.widest, DefaultMaxLen)
	}
	info, err := ReadRunInfo(cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxLen != DefaultMaxLen {
		t.Errorf("config.json records max_len %d, want %d", info.Config.MaxLen, DefaultMaxLen)
	}

	// Evaluation on the file: every row, the same bound, and about 120 MiB allocated in all,
	// nearly all of it reading and tokenizing the 6 MB line; unbounded, the batch of the long
	// review alone took over 1 GiB (and with a review of 300,000 tokens, 349 MiB in all).
	var elog bytes.Buffer
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, _, err := Evaluate(context.Background(), cfg.RunDir, EvalOptions{Data: path, Log: &elog})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if m.N != 101 {
		t.Errorf("evaluated %d examples, want all 101", m.N)
	}
	for _, want := range []string{line, "Data: 101 labelled examples read from " + path + "; evaluating all of them"} {
		if !strings.Contains(elog.String(), want) {
			t.Errorf("the evaluation's log lacks %q:\n%s", want, elog.String())
		}
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("the evaluation allocated %d MiB", alloc>>20)
	if alloc > 256<<20 {
		t.Errorf("the evaluation allocated %d MiB, want under 256", alloc>>20)
	}
}

// TestBatchMemoryRefused: a batch that the memory estimate says cannot fit is refused before
// anything is allocated or written, naming the flags; a new run leaves no directory.
func TestBatchMemoryRefused(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 1
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	// A batch of 16 sample reviews (over 1,000 tokens) needs more than 1 MiB.
	_, err := RunWith(context.Background(), cfg, quietHooks(), Options{batchBudget: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "lower --batch-size or --max-len") {
		t.Fatalf("got %v, want the batch refused, naming --batch-size and --max-len", err)
	}
	if _, err := os.Stat(cfg.RunDir); !os.IsNotExist(err) {
		t.Errorf("the refused run left %s (%v)", cfg.RunDir, err)
	}

	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	_, _, err = Evaluate(context.Background(), cfg.RunDir, EvalOptions{LoadOptions: LoadOptions{batchBudget: 1 << 20}})
	if err == nil || !strings.Contains(err.Error(), "lower --batch-size or --max-len") {
		t.Errorf("evaluate: got %v, want the batch refused", err)
	}
	p, err := Load(cfg.RunDir, LoadOptions{batchBudget: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Predict([]string{strings.Repeat("good ", 20000), "bad"}); err == nil || !strings.Contains(err.Error(), "more than the 1.00 MiB a batch may take") {
		t.Errorf("predict: got %v, want the batch refused", err)
	}
}

// TestOldRunGetsDefaultBound: a run made before the bound (config.json without max_len) is
// loaded with the default bound, and prediction truncates to it and counts what it cut.
func TestOldRunGetsDefaultBound(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 1
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(cfg.RunDir, ConfigFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	var config map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw["config"], &config); err != nil {
		t.Fatal(err)
	}
	if config["max_len"] != float64(DefaultMaxLen) {
		t.Fatalf("config.json's max_len is %v, want %d", config["max_len"], DefaultMaxLen)
	}
	delete(config, "max_len")
	if raw["config"], err = json.Marshal(config); err != nil {
		t.Fatal(err)
	}
	if b, err = json.Marshal(raw); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	pr, err := Load(cfg.RunDir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pr.MaxTokens() != DefaultMaxLen {
		t.Errorf("an old run's bound is %d, want %d", pr.MaxTokens(), DefaultMaxLen)
	}
	long := strings.Repeat("good ", DefaultMaxLen+1)
	probs, err := pr.Predict([]string{long, long + "bad bad bad", "bad"})
	if err != nil {
		t.Fatal(err)
	}
	if probs[0] != probs[1] || pr.Truncated() != 2 {
		t.Errorf("two texts that differ after the bound: probabilities %v and %v, %d truncated; want equal, 2", probs[0], probs[1], pr.Truncated())
	}
	if pr, err = Load(cfg.RunDir, LoadOptions{MaxLen: 10}); err != nil || pr.MaxTokens() != 10 {
		t.Errorf("LoadOptions.MaxLen 10: bound %v (%v), want 10", pr.MaxTokens(), err)
	}
}

// TestDefaultMaxLenKeepsIMDBWhole: the default bound cuts no IMDB review (labelled or
// unlabelled), so no figure measured on IMDB changes.
func TestDefaultMaxLenKeepsIMDBWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: reads the whole IMDB archives")
	}
	labelled := testutil.Shared(t, "data/imdb/aclImdb_v1_labelled.tar.gz")
	unsup := testutil.Shared(t, "data/imdb/aclImdb_v1_unsup.tar.gz")
	c, err := data.Load(context.Background(), data.Options{Path: labelled, UnsupPath: unsup, Seed: data.DefaultSeed})
	if err != nil {
		t.Fatal(err)
	}
	longest, name := 0, ""
	var tok data.BasicEnglish
	var buf []string
	for _, e := range c.Examples {
		if buf = tok.AppendTokens(buf[:0], e.Text); len(buf) > longest {
			longest, name = len(buf), e.Name
		}
	}
	t.Logf("%d reviews; the longest, %s, has %d tokens", len(c.Examples), name, longest)
	if len(c.Examples) != 100000 || longest > DefaultMaxLen/2 {
		t.Errorf("%d reviews, the longest %d tokens: want 100,000 and at most half the default bound %d", len(c.Examples), longest, DefaultMaxLen)
	}
}
