package nn

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scheduleVectors is testdata/schedules.json, written by scripts/gen_schedule_vectors.py with
// transformers.get_scheduler: the learning rate of each optimiser step of each case.
type scheduleVectors struct {
	Transformers string `json:"transformers"`
	Torch        string `json:"torch"`
	Cases        []struct {
		Name          string    `json:"name"`
		HFName        string    `json:"hf_name"`
		Kind          string    `json:"kind"`
		BaseLR        float64   `json:"base_lr"`
		TrainingSteps int       `json:"training_steps"`
		WarmupSteps   int       `json:"warmup_steps"`
		WarmupRatio   float64   `json:"warmup_ratio"`
		ResolvedWarm  int       `json:"resolved_warmup_steps"`
		Cycles        float64   `json:"cycles"`
		Power         float64   `json:"power"`
		LREnd         float64   `json:"lr_end"`
		LRs           []float64 `json:"lrs"`
	} `json:"cases"`
}

// TestScheduleMatchesTransformers compares every step of every schedule, with and without
// warmup (in steps and as a ratio), with the rates transformers' schedulers give torch's
// optimiser, within 1e-7 relative.
func TestScheduleMatchesTransformers(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "schedules.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v scheduleVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("testdata/schedules.json: %v", err)
	}
	kinds := map[ScheduleKind]bool{}
	for _, c := range v.Cases {
		cfg := ScheduleConfig{Kind: ScheduleKind(c.Kind), TrainingSteps: c.TrainingSteps, WarmupSteps: c.WarmupSteps,
			WarmupRatio: c.WarmupRatio, Cycles: c.Cycles, Power: c.Power, LREnd: c.LREnd}
		s, err := NewSchedule(cfg, c.BaseLR)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		kinds[s.Kind()] = true
		if s.WarmupSteps() != c.ResolvedWarm {
			t.Errorf("%s: %d warmup steps, transformers %d", c.Name, s.WarmupSteps(), c.ResolvedWarm)
		}
		if len(c.LRs) <= c.TrainingSteps {
			t.Errorf("%s: %d rates for %d steps", c.Name, len(c.LRs), c.TrainingSteps)
		}
		for step, want := range c.LRs {
			got := s.LR(int64(step))
			if math.Abs(got-want) > 1e-7*math.Abs(want) || (want == 0) != (got == 0) {
				t.Errorf("%s (%s): step %d: lr %.17g, transformers %.17g", c.Name, c.HFName, step, got, want)
			}
		}
	}
	for _, k := range ScheduleKinds() {
		if !kinds[k] {
			t.Errorf("no case of the %s schedule in testdata/schedules.json", k)
		}
	}
}

func TestScheduleZeroValueIsConstant(t *testing.T) {
	s, err := NewSchedule(ScheduleConfig{}, 1.2345e-3)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []int64{0, 1, 7, 1 << 40} {
		if m := s.Multiplier(step); m != 1 {
			t.Errorf("multiplier at step %d: %v, want exactly 1", step, m)
		}
		if lr := s.LR(step); lr != 1.2345e-3 {
			t.Errorf("lr at step %d: %v, want the base rate bit for bit", step, lr)
		}
	}
}

func TestScheduleErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  ScheduleConfig
		want string
	}{
		{ScheduleConfig{Kind: "exponential", TrainingSteps: 10}, `"exponential" is not one of`},
		{ScheduleConfig{Kind: ScheduleLinear}, "needs the run's number of training steps"},
		{ScheduleConfig{Kind: ScheduleLinear, TrainingSteps: 10, WarmupSteps: 11}, "warmup steps 11 beyond the run's 10 training steps"},
		{ScheduleConfig{Kind: ScheduleConstant, TrainingSteps: 10, WarmupSteps: 11}, "warmup steps 11 beyond"},
		{ScheduleConfig{Kind: ScheduleLinear, TrainingSteps: 10, WarmupSteps: -1}, "warmup steps -1 must be >= 0"},
		{ScheduleConfig{Kind: ScheduleLinear, TrainingSteps: 10, WarmupRatio: -0.1}, "warmup ratio -0.1 must be in [0, 1]"},
		{ScheduleConfig{Kind: ScheduleLinear, TrainingSteps: 10, WarmupRatio: 1.5}, "warmup ratio 1.5"},
		{ScheduleConfig{Kind: ScheduleLinear, TrainingSteps: 10, WarmupRatio: math.NaN()}, "warmup ratio NaN"},
		{ScheduleConfig{Kind: ScheduleLinear, TrainingSteps: 10, WarmupSteps: 2, WarmupRatio: 0.1}, "not both"},
		{ScheduleConfig{WarmupRatio: 0.1}, "needs the run's number of training steps"},
		{ScheduleConfig{Kind: ScheduleLinear, TrainingSteps: -3}, "-3 training steps"},
		{ScheduleConfig{Kind: SchedulePolynomial, TrainingSteps: 10, LREnd: 1e-3}, "end rate 0.001 must be in [0, the base rate 0.001)"},
		{ScheduleConfig{Kind: SchedulePolynomial, TrainingSteps: 10, Power: -1}, "power -1 must be positive"},
		{ScheduleConfig{Kind: ScheduleCosine, TrainingSteps: 10, Cycles: -1}, "cycles -1"},
	} {
		_, err := NewSchedule(c.cfg, 1e-3)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", c.cfg, err, c.want)
		}
	}
}

// TestScheduleWarmupToTheEnd: a polynomial schedule whose warmup takes every step (transformers
// divides by zero at the last step) ends at its end rate rather than NaN.
func TestScheduleWarmupToTheEnd(t *testing.T) {
	s, err := NewSchedule(ScheduleConfig{Kind: SchedulePolynomial, TrainingSteps: 4, WarmupSteps: 4}, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	for step := int64(0); step <= 5; step++ {
		if m := s.Multiplier(step); math.IsNaN(m) || m < 0 || m > 1 {
			t.Errorf("step %d: multiplier %v", step, m)
		}
	}
}
