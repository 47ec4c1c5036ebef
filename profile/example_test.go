package profile_test

import (
	"fmt"

	"github.com/sentibench/sentibench/profile"
	"github.com/sentibench/sentibench/train"
)

// The trainer's side of a Meter, for one epoch of two training steps and a validation pass.
// The CLI makes the meter (profile.WithDevice(allocator) on a GPU) and hands it to the trainer.
func ExampleMeter() {
	m := profile.NewMeter()
	defer m.Close() // stops the heap sampler if the run ends inside an epoch

	m.StartEpoch(1)
	for step := 0; step < 2; step++ {
		for _, p := range []train.Phase{train.PhaseData, train.PhaseForward, train.PhaseBackward, train.PhaseOptimizer} {
			m.Begin(p)
			// ... the phase's work ...
			m.End(p)
		}
		m.AddWork(64*230, 2.4e10) // real tokens and estimated FLOPs of the batch
	}
	m.Begin(train.PhaseValid)
	m.End(train.PhaseValid)
	s := m.EndEpoch()
	fmt.Println(s.Tokens, len(s.PhaseSeconds))
	// Output: 29440 5
}
