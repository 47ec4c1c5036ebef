package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/tensorboard"
	"github.com/sentibench/sentibench/nn"
)

// tbScalar is one scalar read back from event files.
type tbScalar struct {
	tag   string
	step  int64
	value float64
}

// readTensorBoard reads every scalar of the event files in dir with internal/tensorboard's
// reader, and the hyperparameters.
func readTensorBoard(t *testing.T, dir string) ([]tbScalar, map[string]any) {
	t.Helper()
	files, err := tensorboard.EventFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []tbScalar
	var hp map[string]any
	for _, f := range files {
		evs, err := tensorboard.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			for _, s := range ev.Scalars {
				out = append(out, tbScalar{s.Tag, ev.Step, float64(s.Value)})
			}
			if ev.HParams != nil {
				if hp != nil {
					t.Errorf("hyperparameters written twice")
				}
				hp = ev.HParams
			}
		}
	}
	return out, hp
}

// expectedScalars is what a TensorBoardLog must hold for a run log: every number of every epoch
// line at the step ending the epoch, and the final figures at the last epoch's step.
func expectedScalars(t *testing.T, res *Result) []tbScalar {
	t.Helper()
	var want []tbScalar
	var step int64
	for _, r := range res.Epochs {
		step += int64(r.TrainBatches)
		fields, err := numbers(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fields {
			want = append(want, tbScalar{"epoch/" + f.name, step, f.value})
		}
	}
	for _, f := range []struct {
		name  string
		value float64
	}{{"best_epoch", float64(res.Final.BestEpoch)}, {"best_valid_acc", res.Final.BestValidAcc}, {"best_valid_loss", res.Final.BestValidLoss},
		{"peak_rss_mib", res.Final.PeakRSSMiB}, {"test_acc", res.Final.TestAcc}, {"test_loss", res.Final.TestLoss},
		{"test_seconds", res.Final.TestSeconds}, {"total_seconds", res.Final.TotalSeconds}} {
		if f.name == "peak_rss_mib" && f.value == 0 {
			continue
		}
		want = append(want, tbScalar{"final/" + f.name, step, f.value})
	}
	return want
}

func compareScalars(t *testing.T, reader string, got, want []tbScalar) {
	t.Helper()
	key := func(s tbScalar) string { return fmt.Sprintf("%s@%d", s.tag, s.step) }
	wantBy := map[string]float64{}
	for _, w := range want {
		wantBy[key(w)] = w.value
	}
	seen := map[string]bool{}
	for _, g := range got {
		k := key(g)
		if seen[k] {
			t.Errorf("%s: %s written twice", reader, k)
		}
		seen[k] = true
		w, ok := wantBy[k]
		if !ok {
			t.Errorf("%s: %s = %v is not in the run log", reader, k, g.value)
			continue
		}
		if g.value != float64(float32(w)) {
			t.Errorf("%s: %s = %v, the run log %v", reader, k, g.value, float32(w))
		}
	}
	for _, w := range want {
		if !seen[key(w)] {
			t.Errorf("%s: %s (%v) of the run log is missing", reader, key(w), w.value)
		}
	}
}

// TestTensorBoardLogOfRun trains a small run with a TensorBoardLog as its OnEpoch hook, then
// compares every scalar of its event files with the run log (run.jsonl), read back by this
// repository's reader and, where SENTIBENCH_TB_PYTHONPATH names a tensorboard install, by
// TensorBoard's own EventAccumulator. It then reopens the log as a run resumed after epoch 1
// would, writes epoch 2 and the final line again, and checks that every step is still there once.
func TestTensorBoardLogOfRun(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 2
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	cfg.TensorBoard = TensorBoardOff // this test writes the log itself, through the hooks
	tbDir := filepath.Join(cfg.RunDir, "tb")
	log, err := OpenTensorBoardLog(tbDir, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.HParams(cfg); err != nil {
		t.Fatal(err)
	}
	hooks := quietHooks()
	hooks.OnEpoch = log.OnEpoch
	res, err := Run(context.Background(), cfg, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Final(res.Final); err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	fromLog := readResult(t, cfg.RunDir)
	want := expectedScalars(t, fromLog)
	got, hp := readTensorBoard(t, tbDir)
	compareScalars(t, "internal/tensorboard", got, want)
	if hp["model"] != "cnn" || hp["epochs"] != 2.0 || hp["lr"] != 1e-3 || hp["seed"] != 1234.0 {
		t.Errorf("hyperparameters %v", hp)
	}
	if _, ok := hp["run_dir"]; ok {
		t.Errorf("hyperparameters hold the run directory: %v", hp)
	}
	checkWithTensorBoard(t, tbDir, want)

	// As a run resumed from the checkpoint of epoch 1.
	resumed, err := OpenTensorBoardLog(tbDir, fromLog.Epochs[:1], int64(fromLog.Epochs[0].TrainBatches))
	if err != nil {
		t.Fatal(err)
	}
	if err := resumed.OnEpoch(fromLog.Epochs[1]); err != nil {
		t.Fatal(err)
	}
	if err := resumed.Final(fromLog.Final); err != nil {
		t.Fatal(err)
	}
	if err := resumed.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ = readTensorBoard(t, tbDir)
	compareScalars(t, "internal/tensorboard after resuming", got, want)
	checkWithTensorBoard(t, tbDir, want)

	if _, err := OpenTensorBoardLog(tbDir, fromLog.Epochs, 3); err == nil || !strings.Contains(err.Error(), "fewer than the") {
		t.Errorf("steps before the records' end: error %v", err)
	}
}

// checkWithTensorBoard reads dir with scripts/tb_read.py (TensorBoard's EventAccumulator) when
// SENTIBENCH_TB_PYTHONPATH is set, and compares its scalars with want.
func checkWithTensorBoard(t *testing.T, dir string, want []tbScalar) {
	t.Helper()
	pythonPath := os.Getenv("SENTIBENCH_TB_PYTHONPATH")
	if pythonPath == "" {
		t.Log("SENTIBENCH_TB_PYTHONPATH is not set: not read with TensorBoard's reader")
		return
	}
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("python3", filepath.Join(filepath.Dir(file), "..", "scripts", "tb_read.py"), dir)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pythonPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tb_read.py: %v\n%s", err, stderr.String())
	}
	var read struct {
		Scalars map[string][][3]float64 `json:"scalars"`
	}
	if err := json.Unmarshal(out, &read); err != nil {
		t.Fatal(err)
	}
	var got []tbScalar
	for tag, points := range read.Scalars {
		for _, p := range points {
			if p[0] != math.Trunc(p[0]) {
				t.Errorf("%s: step %v", tag, p[0])
			}
			got = append(got, tbScalar{tag, int64(p[0]), p[1]})
		}
	}
	compareScalars(t, "TensorBoard's EventAccumulator", got, want)
}

// TestRunWritesTensorBoard: a run writes its own TensorBoard log in RUN/tb: every epoch and final
// figure of run.jsonl at the right step, the hyperparameters, and loss, learning rate and
// gradient norm at each optimiser step once. A run interrupted inside an epoch and resumed has
// every step once, with the values of the run left alone (read back by internal/tensorboard
// and, with SENTIBENCH_TB_PYTHONPATH, by TensorBoard's EventAccumulator).
func TestRunWritesTensorBoard(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 2
	cfg.LRSchedule, cfg.WarmupSteps = "linear", 3
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	res, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	tbDir := filepath.Join(cfg.RunDir, "tb")
	steps := checkRunTensorBoard(t, tbDir, cfg, readResult(t, cfg.RunDir))
	if hp := readHParams(t, tbDir); hp["lr_schedule"] != "linear" || hp["warmup_steps"] != 3.0 || hp["model"] != "cnn" {
		t.Errorf("hyperparameters %v", hp)
	}

	for _, stopAt := range []int{4, 8} { // inside epoch 1, inside epoch 2
		cfg.RunDir = filepath.Join(t.TempDir(), fmt.Sprintf("stopped-%d", stopAt))
		ctx, cancel := context.WithCancel(context.Background())
		hooks := quietHooks()
		hooks.Meter = &cancelAfter{n: stopAt, cancel: cancel}
		_, err := Run(ctx, cfg, hooks)
		cancel()
		if err == nil {
			t.Fatalf("stop at %d: the run was not interrupted", stopAt)
		}
		got, err := Resume(context.Background(), cfg.RunDir, quietHooks())
		if err != nil {
			t.Fatal(err)
		}
		sameFigures(t, res, got)
		resumedSteps := checkRunTensorBoard(t, filepath.Join(cfg.RunDir, "tb"), cfg, readResult(t, cfg.RunDir))
		for k, v := range steps {
			if k.tag != "train/loss" && k.tag != "train/learning_rate" && k.tag != "train/grad_norm" {
				continue
			}
			if resumedSteps[k] != v {
				t.Errorf("stop at %d: %s@%d = %v, the run left alone %v", stopAt, k.tag, k.step, resumedSteps[k], v)
			}
		}
	}

	cfg.TensorBoard = TensorBoardOff
	cfg.RunDir = filepath.Join(t.TempDir(), "off")
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.RunDir, "tb")); !os.IsNotExist(err) {
		t.Errorf("tensorboard none: %s/tb exists (%v)", cfg.RunDir, err)
	}
}

type tagStep struct {
	tag  string
	step int64
}

// checkRunTensorBoard compares a run's TensorBoard log with its run log and its schedule, and
// returns every scalar by tag and step.
func checkRunTensorBoard(t *testing.T, dir string, cfg Config, fromLog *Result) map[tagStep]float64 {
	t.Helper()
	got, _ := readTensorBoard(t, dir)
	want := expectedScalars(t, fromLog)
	total := 0
	for _, r := range fromLog.Epochs {
		total += r.TrainBatches
	}
	sched, err := nn.NewSchedule(nn.ScheduleConfig{Kind: nn.ScheduleKind(cfg.LRSchedule), TrainingSteps: total, WarmupSteps: cfg.WarmupSteps}, cfg.LR)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[tagStep]float64{}
	counts := map[string]int{}
	for _, g := range got {
		byKey[tagStep{g.tag, g.step}] = g.value
		if !strings.HasPrefix(g.tag, "train/") {
			continue
		}
		counts[g.tag]++
		if g.step < 1 || g.step > int64(total) {
			t.Errorf("%s at step %d, outside the run's %d steps", g.tag, g.step, total)
		}
		switch g.tag {
		case "train/learning_rate":
			if w := float64(float32(sched.LR(g.step - 1))); g.value != w {
				t.Errorf("learning rate at step %d: %v, the schedule's %v", g.step, g.value, w)
			}
		case "train/loss", "train/grad_norm":
			if !(g.value > 0) || math.IsInf(g.value, 0) {
				t.Errorf("%s at step %d: %v", g.tag, g.step, g.value)
			}
		}
		want = append(want, g) // the step scalars TensorBoard's reader must read back alike
	}
	for _, tag := range []string{"train/loss", "train/learning_rate", "train/grad_norm"} {
		if counts[tag] != total {
			t.Errorf("%s written %d times, want once per optimiser step (%d)", tag, counts[tag], total)
		}
	}
	compareScalars(t, "internal/tensorboard", got, want)
	checkWithTensorBoard(t, dir, want)
	return byKey
}

// readHParams reads the hyperparameters of the event files in dir.
func readHParams(t *testing.T, dir string) map[string]any {
	t.Helper()
	_, hp := readTensorBoard(t, dir)
	return hp
}
