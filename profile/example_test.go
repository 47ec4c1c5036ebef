package profile_test

import (
	"fmt"
	"os"

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

// Report compares runs; here a log of the PyTorch reference trainer alone.
func ExampleReport() {
	_, err := profile.Report(os.Stdout, []string{"testdata/torch_cnn.jsonl"}, profile.ReportOptions{Format: profile.FormatMarkdown})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// | run | framework | model | device | dropout | params | checkpoint | epochs | best valid acc | test acc | s/epoch | tokens/s | peak RSS MiB | peak GPU MiB |
	// |---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
	// | torch_cnn | torch 2.15.0 | cnn | cpu | 0.5 | 1,009,901 | - | 3 | 52.50% | 51.25% | 8.6 | 9,771 | 1,282* | - |
	//
	// \* whole-process peak RSS (getrusage ru_maxrss: data loading and earlier epochs included), not per epoch
}
