package nn

import (
	"math"
	"testing"
)

func TestProbabilities(t *testing.T) {
	for _, tc := range []struct {
		logits []float32
		want   []float64
		class  int
	}{
		{[]float32{0}, []float64{0.5, 0.5}, 0},
		{[]float32{2}, []float64{1 - 1/(1+math.Exp(-2)), 1 / (1 + math.Exp(-2))}, 1},
		{[]float32{1, 2, 3}, []float64{0.09003057317038046, 0.24472847105479767, 0.6652409557748219}, 2},
		{[]float32{1000, 0, -1000}, []float64{1, 0, 0}, 0}, // no overflow
		{[]float32{5, 5}, []float64{0.5, 0.5}, 0},
	} {
		got := Probabilities(nil, tc.logits)
		if len(got) != len(tc.want) {
			t.Fatalf("%v: %d probabilities, want %d", tc.logits, len(got), len(tc.want))
		}
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-12 {
				t.Errorf("%v: p[%d] = %v, want %v", tc.logits, i, got[i], tc.want[i])
			}
		}
		if c := Predicted(tc.logits); c != tc.class {
			t.Errorf("%v: predicted %d, want %d", tc.logits, c, tc.class)
		}
	}
}
