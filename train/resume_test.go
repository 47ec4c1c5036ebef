package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The resume tests train small models on the bundled sample, stop them at random points —
// SIGKILL in a child process, or a cancelled context — resume them, and require the figures of
// an undisturbed run, bit for bit.

const childEnv = "SENTIBENCH_TRAIN_CHILD"

// TestMain lets the test binary double as the child process that trains and gets killed.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	if dir := os.Getenv(lockChildEnv); dir != "" {
		os.Exit(holdLock(dir))
	}
	os.Exit(m.Run())
}

// childSpec is what the child process does.
type childSpec struct {
	Config Config `json:"config"`
	RunDir string `json:"run_dir"`
}

func runChild(spec string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	s.Config.RunDir = s.RunDir
	hooks := Hooks{Log: io.Discard, Progress: io.Discard}
	var err error
	if _, statErr := os.Stat(filepath.Join(s.RunDir, ConfigFile)); statErr == nil {
		_, err = Resume(context.Background(), s.RunDir, hooks)
	} else {
		_, err = Run(context.Background(), s.Config, hooks)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// smallConfig is a run of a few seconds on the bundled sample.
func smallConfig(model string) Config {
	cfg := DefaultConfig(model)
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

func quietHooks() Hooks { return Hooks{Log: io.Discard, Progress: io.Discard} }

// sameFigures requires two runs' figures to be bit-identical (times and memory aside).
func sameFigures(t *testing.T, want, got *Result) {
	t.Helper()
	if len(want.Epochs) != len(got.Epochs) {
		t.Fatalf("%d epochs, want %d", len(got.Epochs), len(want.Epochs))
	}
	for i, w := range want.Epochs {
		g := got.Epochs[i]
		if w.TrainLoss != g.TrainLoss || w.TrainAcc != g.TrainAcc || w.ValidLoss != g.ValidLoss || w.ValidAcc != g.ValidAcc || w.Tokens != g.Tokens {
			t.Errorf("epoch %d: got train %v/%v valid %v/%v tokens %d, want %v/%v %v/%v %d", w.Epoch,
				g.TrainLoss, g.TrainAcc, g.ValidLoss, g.ValidAcc, g.Tokens, w.TrainLoss, w.TrainAcc, w.ValidLoss, w.ValidAcc, w.Tokens)
		}
	}
	if want.Final.TestLoss != got.Final.TestLoss || want.Final.TestAcc != got.Final.TestAcc || want.Final.BestEpoch != got.Final.BestEpoch {
		t.Errorf("test: got loss %v acc %v best %d, want %v %v %d", got.Final.TestLoss, got.Final.TestAcc, got.Final.BestEpoch,
			want.Final.TestLoss, want.Final.TestAcc, want.Final.BestEpoch)
	}
}

// readResult rebuilds a finished run's Result from its run log.
func readResult(t *testing.T, dir string) *Result {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, RunLogFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res := &Result{RunDir: dir}
	dec := json.NewDecoder(f)
	for dec.More() {
		var raw map[string]json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(raw)
		if _, ok := raw["test_loss"]; ok {
			json.Unmarshal(b, &res.Final)
		} else {
			var r EpochRecord
			json.Unmarshal(b, &r)
			res.Epochs = append(res.Epochs, r)
		}
	}
	return res
}

// TestResumeAfterSIGKILL kills a training child process at random moments, resumes it until it
// finishes, and compares with an undisturbed run.
func TestResumeAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several small models")
	}
	for _, model := range []string{"cnn", "lstm"} {
		t.Run(model, func(t *testing.T) {
			cfg := smallConfig(model)
			cfg.RunDir = filepath.Join(t.TempDir(), "reference")
			want, err := Run(context.Background(), cfg, quietHooks())
			if err != nil {
				if model == "lstm" && strings.Contains(err.Error(), "not merged yet") {
					t.Skip(err)
				}
				t.Fatal(err)
			}
			// How long an undisturbed child takes, start-up included: the kills fall inside it.
			start := time.Now()
			if killed, err := runChildFor(cfg, filepath.Join(t.TempDir(), "timing"), time.Hour); err != nil || killed {
				t.Fatalf("timing run: killed %v, %v", killed, err)
			}
			span := time.Since(start)
			seed := uint64(time.Now().UnixNano())
			rng := rand.New(rand.NewPCG(seed, 1))
			// Trials until three runs were killed at least once (a kill may come too late, after
			// the child finished): each killed run is resumed to the end and must match.
			killedRuns := 0
			for trial := 0; killedRuns < 3; trial++ {
				if trial >= 12 {
					t.Fatalf("only %d of %d runs were killed before they finished (seed %d)", killedRuns, trial, seed)
				}
				dir := filepath.Join(t.TempDir(), fmt.Sprintf("killed-%d", trial))
				// Kill it once or twice at random moments, then let it finish.
				kills := 0
				for attempt := 0; attempt <= 1+trial%2; attempt++ {
					delay := time.Duration((0.05 + 0.85*rng.Float64()) * float64(span))
					if attempt == 1+trial%2 {
						delay = time.Hour
					}
					killed, err := runChildFor(cfg, dir, delay)
					if err != nil {
						t.Fatalf("trial %d (seed %d): %v", trial, seed, err)
					}
					if killed {
						kills++
					}
				}
				if kills == 0 {
					continue
				}
				killedRuns++
				got := readResult(t, dir)
				t.Logf("trial %d: %d kills (seed %d)", trial, kills, seed)
				sameFigures(t, want, got)
			}
		})
	}
}

// runChildFor trains in a child process and kills it with SIGKILL after delay. It reports
// whether the child was killed (false: it finished).
func runChildFor(cfg Config, dir string, delay time.Duration) (bool, error) {
	spec, _ := json.Marshal(childSpec{Config: cfg, RunDir: dir})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return false, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return false, fmt.Errorf("child failed: %v: %s", err, stderr.String())
		}
		return false, nil
	case <-time.After(delay):
		cmd.Process.Signal(syscall.SIGKILL)
		err := <-done
		if err == nil { // it finished just before the signal
			return false, nil
		}
		return true, nil
	}
}

type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if len(l.b) < 1<<16 {
		l.b = append(l.b, p...)
	}
	return len(p), nil
}
func (l *limitedBuffer) String() string { return string(l.b) }

// TestResumeAfterInterrupt cancels the context in the middle of an epoch (as SIGINT does in
// the CLI): the run saves a mid-epoch checkpoint, and resuming it gives the same figures.
func TestResumeAfterInterrupt(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.RunDir = filepath.Join(t.TempDir(), "reference")
	want, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	for _, stopAt := range []int{1, 7, 12} { // batches into the run (each epoch has 8)
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("stopped-%d", stopAt))
		got := interruptAndResume(t, cfg, dir, stopAt)
		sameFigures(t, want, got)
		if fromLog := readResult(t, dir); len(fromLog.Epochs) != len(want.Epochs) {
			t.Errorf("the run log has %d epochs, want %d", len(fromLog.Epochs), len(want.Epochs))
		}
	}
}

// interruptAndResume runs cfg in dir, cancels it after stopAt training batches (as SIGINT does
// in the CLI), checks that it stopped with ErrInterrupted, and resumes it to the end.
func interruptAndResume(t *testing.T, cfg Config, dir string, stopAt int) *Result {
	t.Helper()
	cfg.RunDir = dir
	ctx, cancel := context.WithCancel(context.Background())
	hooks := quietHooks()
	hooks.Meter = &cancelAfter{n: stopAt, cancel: cancel}
	_, err := Run(ctx, cfg, hooks)
	cancel()
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("stop at batch %d: got %v, want ErrInterrupted", stopAt, err)
	}
	got, err := Resume(context.Background(), dir, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// cancelAfter is a Meter that cancels the run's context after n training batches.
type cancelAfter struct {
	WallClock
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

// TestResumeChecksKind: a run made with another objective (Objective.Kind) records its kind, and a
// resume with other hooks is refused with a message naming the command to use.
func TestResumeChecksKind(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	hooks := quietHooks()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hooks.Meter = &cancelAfter{n: 1, cancel: cancel} // stops after a batch, with a checkpoint
	if _, err := RunWith(ctx, cfg, hooks, Options{Objective: Objective{Kind: "distill"}}); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	info, err := ReadRunInfo(cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != "distill" {
		t.Errorf("config.json records kind %q, want distill", info.Kind)
	}
	_, err = Resume(context.Background(), cfg.RunDir, quietHooks())
	if err == nil || !strings.Contains(err.Error(), "sentibench distill --resume") {
		t.Errorf("plain resume of a distill run: got %v, want a refusal naming sentibench distill --resume", err)
	}
}

// TestResumeDamagedCheckpoint: a checkpoint whose state is not JSON is an error naming it (it
// used to panic in the cleanup of the failed setup).
func TestResumeDamagedCheckpoint(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 1
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(cfg.RunDir, LastDir, "state.json")
	good, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	// Each edit of the real state.json leaves valid JSON with counts the trainer cannot have
	// written; a negative batch used to index batches[-1] on resume.
	edits := map[string]func(st map[string]any){
		"negative batch": func(st map[string]any) { // and the run not finished: epoch 1 is run again
			st["batch"], st["epoch"], st["best_epoch"], st["records"], st["done"] = -1, 0, 0, []any{}, false
		},
		"negative epoch":  func(st map[string]any) { st["epoch"] = -1 },
		"best epoch":      func(st map[string]any) { st["best_epoch"] = 7 },
		"records":         func(st map[string]any) { st["records"] = []any{} },
		"partial correct": func(st map[string]any) { st["partial"] = map[string]any{"correct": 5, "n": 3} },
	}
	for name, edit := range edits {
		var st map[string]any
		if err := json.Unmarshal(good, &st); err != nil {
			t.Fatal(err)
		}
		edit(st)
		b, _ := json.Marshal(st)
		if err := os.WriteFile(state, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Resume(context.Background(), cfg.RunDir, quietHooks())
		if err == nil || !strings.Contains(err.Error(), state) || !strings.Contains(err.Error(), "damaged checkpoint") {
			t.Errorf("%s: resuming: %v", name, err)
		}
	}
	if err := os.WriteFile(state, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Resume(context.Background(), cfg.RunDir, quietHooks())
	if err == nil || !strings.Contains(err.Error(), state) {
		t.Errorf("resuming with a damaged %s: %v", state, err)
	}
}

// TestResumeGloVeRun: a run started from pretrained vectors (frozen) resumes from its checkpoint
// alone, even with the vectors file gone, and ends as the same run left alone.
func TestResumeGloVeRun(t *testing.T) {
	vectors := filepath.Join(t.TempDir(), "vectors.txt")
	var b strings.Builder
	for i, w := range []string{"the", "movie", "film", "good", "bad", "great", "worst", "and"} {
		b.WriteString(w)
		for d := 0; d < 16; d++ {
			fmt.Fprintf(&b, " %g", float64((i*16+d)%7)/7-0.5)
		}
		b.WriteByte('\n')
	}
	if err := os.WriteFile(vectors, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig("cnn")
	cfg.GloVe, cfg.FreezeEmbedding = vectors, true
	cfg.RunDir = filepath.Join(t.TempDir(), "reference")
	want, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RunDir = filepath.Join(t.TempDir(), "stopped")
	ctx, cancel := context.WithCancel(context.Background())
	hooks := quietHooks()
	hooks.Meter = &cancelAfter{n: 10, cancel: cancel}
	_, err = Run(ctx, cfg, hooks)
	cancel()
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	if err := os.Remove(vectors); err != nil {
		t.Fatal(err)
	}
	got, err := Resume(context.Background(), cfg.RunDir, quietHooks())
	if err != nil {
		t.Fatalf("resume without the vectors file: %v", err)
	}
	sameFigures(t, want, got)
}

// TestRunSetupErrorLeavesNoDirectory: a run that fails before it starts (a bad vectors file)
// leaves no empty run directory behind.
func TestRunSetupErrorLeavesNoDirectory(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.GloVe = filepath.Join(t.TempDir(), "missing-vectors.txt")
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), cfg, quietHooks()); err == nil || !strings.Contains(err.Error(), "missing-vectors.txt") {
		t.Fatalf("got %v, want an error naming the vectors file", err)
	}
	if _, err := os.Stat(cfg.RunDir); !os.IsNotExist(err) {
		t.Fatalf("the run directory is still there (stat: %v)", err)
	}
}

// TestRunSetupErrorRemovesWhatItWrote: a run whose setup fails after it wrote its first files
// (its TensorBoard directory cannot be made, after config.json, vocab.txt and run.jsonl) leaves
// no half-made run directory behind.
func TestRunSetupErrorRemovesWhatItWrote(t *testing.T) {
	cfg := smallConfig("cnn")
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.TensorBoard = filepath.Join(blocker, "tb") // under a file: cannot be made
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), cfg, quietHooks()); err == nil {
		t.Fatal("the run started with a TensorBoard directory that cannot be made")
	}
	if _, err := os.Stat(cfg.RunDir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(cfg.RunDir)
		t.Fatalf("the run directory is still there (stat: %v; %d entries)", err, len(entries))
	}
}
