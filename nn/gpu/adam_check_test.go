package gpu

import (
	"strings"
	"testing"

	"github.com/sentibench/sentibench/nn"
)

// TestTrainerRefusesUnsupportedAdam: the device's Adam kernel has neither decoupled weight decay
// nor a per-step learning rate, so the trainer refuses them (at creation and when Push takes an
// optimiser's settings) rather than train with a constant rate and no decay.
func TestTrainerRefusesUnsupportedAdam(t *testing.T) {
	c := parityCases()[0]
	plain := nn.AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	for _, bad := range []struct {
		cfg  nn.AdamConfig
		want string
	}{
		{nn.AdamConfig{LR: 1e-3, DecoupledWeightDecay: 0.01}, "decoupled weight decay"},
		{nn.AdamConfig{LR: 1e-3, Schedule: nn.ScheduleConfig{Kind: nn.ScheduleCosine, TrainingSteps: 10}}, "learning-rate schedule (cosine"},
		{nn.AdamConfig{LR: 1e-3, Schedule: nn.ScheduleConfig{TrainingSteps: 10, WarmupSteps: 2}}, "learning-rate schedule"},
	} {
		if _, err := newTrainer(newEmu(t), c.model(t), bad.cfg); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("newTrainer with %+v: error %v, want one containing %q", bad.cfg, err, bad.want)
		}
		tr, err := newTrainer(newEmu(t), c.model(t), plain)
		if err != nil {
			t.Fatal(err)
		}
		opt, err := nn.NewAdam(bad.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Push(opt); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Push with %+v: error %v, want one containing %q", bad.cfg, err, bad.want)
		}
		tr.Close()
	}
	// The constant rate without warmup, however spelled, is the kernel's.
	ok := plain
	ok.Schedule = nn.ScheduleConfig{Kind: nn.ScheduleConstant, TrainingSteps: 10}
	tr, err := newTrainer(newEmu(t), c.model(t), ok)
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()
}
