package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentibench/sentibench/nn"
)

// scheduledConfig is smallConfig with a warmup, a cosine schedule, decoupled weight decay and
// gradient accumulation over 3 micro-batches.
func scheduledConfig(model string) Config {
	cfg := smallConfig(model)
	cfg.LRSchedule = string(nn.ScheduleCosine)
	cfg.WarmupSteps = 5
	cfg.WeightDecay = 0.05
	cfg.LR = 3e-3
	cfg.GradAccum = 3
	return cfg
}

// TestScheduleResume: a run with a warmup, a cosine schedule, weight decay and accumulation, interrupted inside
// its epochs and resumed, ends as the same run left alone, bit for bit; its epoch records hold
// the schedule's rate of each epoch's last step, and its figures are not the constant rate's.
func TestScheduleResume(t *testing.T) {
	cfg := scheduledConfig("cnn")
	cfg.RunDir = filepath.Join(t.TempDir(), "reference")
	want, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	const perEpoch = 6
	sched, err := nn.NewSchedule(nn.ScheduleConfig{Kind: nn.ScheduleCosine, TrainingSteps: 3 * perEpoch, WarmupSteps: 5}, cfg.LR)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range want.Epochs {
		if r.TrainBatches != perEpoch {
			t.Fatalf("epoch %d has %d batches, the test expects %d", r.Epoch, r.TrainBatches, perEpoch)
		}
		if wantLR := sched.LR(int64(perEpoch*(i+1) - 1)); r.LR != wantLR {
			t.Errorf("epoch %d: lr %v, want the schedule's %v", r.Epoch, r.LR, wantLR)
		}
	}
	if want.Epochs[2].LR >= want.Epochs[1].LR || want.Epochs[1].LR >= cfg.LR {
		t.Errorf("the rate does not fall: %v, %v, %v", want.Epochs[0].LR, want.Epochs[1].LR, want.Epochs[2].LR)
	}

	plain := smallConfig("cnn")
	plain.LR = cfg.LR
	plain.RunDir = filepath.Join(t.TempDir(), "constant")
	constant, err := Run(context.Background(), plain, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	if constant.Epochs[0].TrainLoss == want.Epochs[0].TrainLoss || constant.Final.TestLoss == want.Final.TestLoss {
		t.Errorf("the schedule and weight decay changed nothing: train loss %v, test loss %v", constant.Epochs[0].TrainLoss, constant.Final.TestLoss)
	}
	if constant.Epochs[2].LR != cfg.LR {
		t.Errorf("constant rate: epoch record lr %v, want %v", constant.Epochs[2].LR, cfg.LR)
	}

	for _, stopAt := range []int{3, 8, 14} { // inside the warmup, the second and the third epoch
		got := interruptAndResume(t, cfg, filepath.Join(t.TempDir(), fmt.Sprintf("stopped-%d", stopAt)), stopAt)
		sameFigures(t, want, got)
		for i := range want.Epochs {
			if got.Epochs[i].LR != want.Epochs[i].LR {
				t.Errorf("stop at %d: epoch %d lr %v, want %v", stopAt, i+1, got.Epochs[i].LR, want.Epochs[i].LR)
			}
		}
	}
}

// TestScheduleConfigErrors: what a schedule, weight decay or accumulation cannot be is a
// *ConfigError naming the field, before any file is written; a warmup longer than the run once
// the data are read.
func TestScheduleConfigErrors(t *testing.T) {
	for _, c := range []struct {
		edit  func(*Config)
		field string
	}{
		{func(c *Config) { c.LRSchedule = "exponential" }, "lr_schedule"},
		{func(c *Config) { c.WarmupSteps = -1 }, "warmup_steps"},
		{func(c *Config) { c.WarmupRatio = -0.1 }, "warmup_ratio"},
		{func(c *Config) { c.WarmupRatio = 1.5 }, "warmup_ratio"},
		{func(c *Config) { c.WarmupRatio, c.WarmupSteps = 0.1, 3 }, "warmup_ratio"},
		{func(c *Config) { c.WeightDecay = -0.01 }, "weight_decay"},
		{func(c *Config) { c.WeightDecay = math.Inf(1) }, "weight_decay"},
		{func(c *Config) { c.GradAccum = 17 }, "grad_accum"},
		{func(c *Config) { c.GradAccum = -2 }, "grad_accum"},
		{func(c *Config) { c.Device, c.LRSchedule = "cuda", "cosine" }, "lr_schedule"},
		{func(c *Config) { c.Device, c.WarmupRatio = "cuda", 0.1 }, "warmup_ratio"},
		{func(c *Config) { c.Device, c.WeightDecay = "cuda", 0.1 }, "weight_decay"},
		{func(c *Config) { c.Device, c.GradAccum = "cuda", 2 }, "grad_accum"},
	} {
		cfg := smallConfig("cnn")
		c.edit(&cfg)
		var ce *ConfigError
		if err := cfg.Check(); !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%+v: got %v, want a ConfigError on %s", cfg, err, c.field)
		}
	}
	cfg := smallConfig("cnn")
	cfg.WarmupSteps = 19 // 3 epochs of 6 batches: 18 steps
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), cfg, quietHooks())
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "warmup_steps" || !strings.Contains(err.Error(), "18 optimiser steps") {
		t.Errorf("warmup beyond the run: got %v", err)
	}
	cfg.WarmupSteps, cfg.MaxBatches = 7, 2 // --max-batches shortens the run: 6 steps
	_, err = Run(context.Background(), cfg, quietHooks())
	if !errors.As(err, &ce) || ce.Field != "warmup_steps" || !strings.Contains(err.Error(), "6 optimiser steps") {
		t.Errorf("warmup beyond a run of capped epochs: got %v", err)
	}
}

// TestOptimiserFromConfig: the run's optimiser gets the weight decay (AdamW's, not Adam's L2)
// and the schedule over the run's steps, the warmup ratio resolved; the recipe's gets neither.
func TestOptimiserFromConfig(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.WeightDecay, cfg.LRSchedule, cfg.WarmupRatio = 0.05, "polynomial", 0.25
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	resolved, err := cfg.resolved()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.RunDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tr, err := newTrainer(context.Background(), resolved, quietHooks(), Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	oc := tr.opt.Config()
	if oc.DecoupledWeightDecay != 0.05 || oc.WeightDecay != 0 {
		t.Errorf("weight decay: decoupled %v, L2 %v; want decoupled 0.05", oc.DecoupledWeightDecay, oc.WeightDecay)
	}
	if s := tr.opt.Schedule(); s.Kind() != nn.SchedulePolynomial || s.WarmupSteps() != 5 { // ceil(0.25 * 18)
		t.Errorf("schedule %s with %d warmup steps, want polynomial with 5", s.Kind(), s.WarmupSteps())
	}

	plain := newTestTrainer(t, "cnn", 1)
	if oc := plain.opt.Config(); oc.DecoupledWeightDecay != 0 || oc.Schedule != (nn.ScheduleConfig{}) {
		t.Errorf("the recipe's optimiser: %+v", oc)
	}
}

// TestScheduleResumeAfterSIGKILL kills a training child process with a schedule, weight decay
// and accumulation at random moments and resumes it: the figures are the run left alone's, bit
// for bit, and its TensorBoard log holds each step once and the run log's figures.
func TestScheduleResumeAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several small models")
	}
	cfg := scheduledConfig("cnn")
	cfg.RunDir = filepath.Join(t.TempDir(), "reference")
	want, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if killed, err := runChildFor(cfg, filepath.Join(t.TempDir(), "timing"), time.Hour); err != nil || killed {
		t.Fatalf("timing run: killed %v, %v", killed, err)
	}
	span := time.Since(start)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 2))
	killedRuns := 0
	for trial := 0; killedRuns < 2; trial++ {
		if trial >= 10 {
			t.Fatalf("only %d of %d runs were killed before they finished (seed %d)", killedRuns, trial, seed)
		}
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("killed-%d", trial))
		killed, err := runChildFor(cfg, dir, time.Duration((0.1+0.8*rng.Float64())*float64(span)))
		if err != nil {
			t.Fatalf("trial %d (seed %d): %v", trial, seed, err)
		}
		if !killed {
			continue
		}
		if _, err := runChildFor(cfg, dir, time.Hour); err != nil {
			t.Fatalf("trial %d (seed %d): resuming: %v", trial, seed, err)
		}
		killedRuns++
		got := readResult(t, dir)
		sameFigures(t, want, got)
		c := cfg
		c.RunDir = dir
		checkRunTensorBoard(t, filepath.Join(dir, "tb"), c, got)
	}
}
