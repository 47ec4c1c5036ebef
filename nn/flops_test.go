package nn

import (
	"math"
	"testing"
)

// The spike's figures (shared/reference/cpu-spike/README.md) at T=200, B=64, full lengths:
// biLSTM2 13.81 MFLOP/token for training, the CNN 9.07 GFLOP per batch.
func TestTrainFLOPs(t *testing.T) {
	lengths := make([]int, 64)
	for i := range lengths {
		lengths[i] = 200
	}
	in := &Input{Lengths: lengths, T: 200}
	lstm, _ := DefaultConfig(KindLSTM, 25002)
	perToken := (TrainFLOPs(lstm, in) - 3*2*64*512) / float64(in.Tokens())
	if math.Abs(perToken/1e6-13.81) > 0.01 {
		t.Errorf("lstm: %.3f MFLOP/token, want 13.81", perToken/1e6)
	}
	cnn, _ := DefaultConfig(KindCNN, 25002)
	if got := TrainFLOPs(cnn, in) / 1e9; math.Abs(got-9.07) > 0.01 {
		t.Errorf("cnn: %.3f GFLOP/batch, want 9.07", got)
	}
	// Short reviews count as padded to the widest filter: one window of width 5, two of 4...
	short := &Input{Lengths: []int{2}, T: 2}
	want := 3 * (2*float64(3*100*100*3+2*100*100*4+1*100*100*5) + 2*300)
	if got := TrainFLOPs(cnn, short); got != want {
		t.Errorf("cnn, length 2: %v, want %v", got, want)
	}
}

// TestForwardFLOPsClasses: K outputs cost the classifier's product K times one output's,
// 2 x B x its input width x K, and nothing else changes (the concat-pooled bigru's classifier
// reads three times the final states).
func TestForwardFLOPsClasses(t *testing.T) {
	in := &Input{Lengths: []int{9, 7, 4}, T: 9}
	B := 3.0
	for _, K := range []int{3, 5} {
		for _, c := range kClassModels(K) {
			fcIn := map[string]float64{"lstm": 2 * 5, "cnn": 2 * 4, "bigru": 2 * 5, "bigru-concat": 3 * 2 * 5}[c.name]
			one := c.cfg
			one.Outputs = 1
			got := ForwardFLOPs(c.cfg, in) - ForwardFLOPs(one, in)
			if want := 2 * B * fcIn * float64(K-1); got != want {
				t.Errorf("%s: %d outputs add %v FLOPs to one output's, want %v", c.name, K, got, want)
			}
		}
	}
}
