package nn

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestAdamWParity runs AdamW (decoupled weight decay) for 6 steps, without a schedule and with
// transformers' linear warmup-and-decay schedule, against torch.optim.AdamW
// (testdata/adamw.safetensors, from scripts/gen_schedule_vectors.py): the learning rate of each
// step, the weights after each step and the moments at the end.
func TestAdamWParity(t *testing.T) {
	v := openVectors(t, "adamw.safetensors")
	for _, c := range []struct {
		tag string
		cfg AdamConfig
	}{
		{"plain", AdamConfig{DecoupledWeightDecay: 0.01}},
		{"sched", AdamConfig{LR: 3e-2, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, DecoupledWeightDecay: 0.1,
			Schedule: ScheduleConfig{Kind: ScheduleLinear, TrainingSteps: 6, WarmupSteps: 2}}},
	} {
		params := []*Param{NewParam("a.weight", 4, 3), NewParam("a.bias", 5)}
		for _, p := range params {
			copy(p.Data(), v.f32("init."+p.Name))
		}
		opt, err := NewAdam(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		lrs := float64s(t, v, c.tag+".lr")
		for k := 0; k < 6; k++ {
			if lr := opt.NextLR(); math.Abs(lr-lrs[k]) > 1e-7*lrs[k] || (lr == 0) != (lrs[k] == 0) {
				t.Errorf("%s step %d: lr %v, torch %v", c.tag, k+1, lr, lrs[k])
			}
			for _, p := range params {
				copy(p.Grad, v.f32(fmt.Sprintf("grad%d.%s", k, p.Name)))
			}
			if err := opt.Step(params); err != nil {
				t.Fatal(err)
			}
			if opt.LastLR != lrs[k] && math.Abs(opt.LastLR-lrs[k]) > 1e-7*lrs[k] {
				t.Errorf("%s step %d: LastLR %v, torch %v", c.tag, k+1, opt.LastLR, lrs[k])
			}
			for _, p := range params {
				assertClose(t, fmt.Sprintf("%s step %d %s", c.tag, k+1, p.Name), p.Data(), v.f32(fmt.Sprintf("%s.step%d.%s", c.tag, k, p.Name)), 1e-6)
			}
		}
		st := opt.State()
		for _, p := range params {
			assertClose(t, c.tag+" exp_avg "+p.Name, st[p.Name].ExpAvg, v.f32(c.tag+".exp_avg."+p.Name), 1e-6)
			assertClose(t, c.tag+" exp_avg_sq "+p.Name, st[p.Name].ExpAvgSq, v.f32(c.tag+".exp_avg_sq."+p.Name), 1e-6)
		}
	}
}

// TestAdamScheduleResumes: an optimiser restored from another's state (as from a checkpoint)
// continues the schedule where the other stopped, and gives the same weights bit for bit as one
// that never stopped.
func TestAdamScheduleResumes(t *testing.T) {
	cfg := AdamConfig{LR: 1e-2, DecoupledWeightDecay: 0.05,
		Schedule: ScheduleConfig{Kind: ScheduleCosine, TrainingSteps: 10, WarmupRatio: 0.2}}
	newParams := func() []*Param {
		ps := []*Param{NewParam("w", 7), NewParam("b", 3)}
		for i, p := range ps {
			for j := range p.Data() {
				p.Data()[j] = float32(math.Sin(float64(3*i + j)))
			}
		}
		return ps
	}
	setGrads := func(ps []*Param, k int) {
		for i, p := range ps {
			for j := range p.Grad {
				p.Grad[j] = float32(math.Cos(float64(k*11 + 5*i + j)))
			}
		}
	}
	straight, resumed := newParams(), newParams()
	a, _ := NewAdam(cfg)
	for k := 0; k < 10; k++ {
		setGrads(straight, k)
		if err := a.Step(straight); err != nil {
			t.Fatal(err)
		}
	}
	b1, _ := NewAdam(cfg)
	for k := 0; k < 4; k++ {
		setGrads(resumed, k)
		b1.Step(resumed)
	}
	b2, _ := NewAdam(cfg)
	if err := b2.SetState(b1.State(), resumed); err != nil {
		t.Fatal(err)
	}
	if b2.Steps() != 4 || b2.NextLR() != b1.NextLR() {
		t.Fatalf("restored: %d steps, next lr %v; the original %d, %v", b2.Steps(), b2.NextLR(), b1.Steps(), b1.NextLR())
	}
	for k := 4; k < 10; k++ {
		setGrads(resumed, k)
		b2.Step(resumed)
	}
	for i := range straight {
		for j, w := range straight[i].Data() {
			if r := resumed[i].Data()[j]; math.Float32bits(r) != math.Float32bits(w) {
				t.Fatalf("%s[%d]: resumed %v, straight %v", straight[i].Name, j, r, w)
			}
		}
	}
	if a.LastLR != b2.LastLR {
		t.Errorf("last lr: straight %v, resumed %v", a.LastLR, b2.LastLR)
	}
}

// TestAdamDefaultsUnchanged: without a schedule and without decoupled weight decay, every step
// uses the configured rate exactly, and a constant schedule gives the same bits as none.
func TestAdamDefaultsUnchanged(t *testing.T) {
	run := func(cfg AdamConfig) ([]float32, *Adam) {
		p := NewParam("w", 9)
		for j := range p.Data() {
			p.Data()[j] = float32(j) - 4
		}
		opt, err := NewAdam(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 5; k++ {
			for j := range p.Grad {
				p.Grad[j] = float32(math.Sin(float64(k*9 + j)))
			}
			opt.Step([]*Param{p})
			if opt.LastLR != cfg.LR {
				t.Errorf("%+v: step %d at lr %v", cfg.Schedule, k+1, opt.LastLR)
			}
		}
		return p.Data(), opt
	}
	plain, _ := run(AdamConfig{LR: 3e-3})
	constant, _ := run(AdamConfig{LR: 3e-3, Schedule: ScheduleConfig{Kind: ScheduleConstant, TrainingSteps: 5}})
	for j := range plain {
		if math.Float32bits(plain[j]) != math.Float32bits(constant[j]) {
			t.Fatalf("w[%d]: constant schedule %v, none %v", j, constant[j], plain[j])
		}
	}
}

func TestAdamConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  AdamConfig
		want string
	}{
		{AdamConfig{WeightDecay: 0.1, DecoupledWeightDecay: 0.1}, "not both"},
		{AdamConfig{DecoupledWeightDecay: -1}, "decoupled weight decay -1 must be >= 0"},
		{AdamConfig{DecoupledWeightDecay: math.NaN()}, "decoupled weight decay NaN"},
		{AdamConfig{Schedule: ScheduleConfig{Kind: ScheduleLinear, TrainingSteps: 3, WarmupSteps: 4}}, "nn: adam: nn: learning-rate schedule: warmup steps 4 beyond"},
	} {
		_, err := NewAdam(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", c.cfg, err, c.want)
		}
	}
}

// float64s reads an F64 tensor of a vectors file, exactly.
func float64s(t *testing.T, v *vectors, name string) []float64 {
	t.Helper()
	info, raw, err := v.f.Raw(name)
	if err != nil {
		t.Fatal(err)
	}
	if info.DType != "F64" {
		t.Fatalf("%s: %s, want F64", name, info.DType)
	}
	out := make([]float64, len(raw)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	return out
}
