package gradcheck

import (
	"math"
	"testing"
)

// TestCentral checks the difference against known derivatives and that x is restored.
func TestCentral(t *testing.T) {
	x := []float64{0.3, -1.2, 2}
	f := func() float64 { return x[0]*x[0]*x[1] + math.Sin(x[2]) }
	want := []float64{2 * x[0] * x[1], x[0] * x[0], math.Cos(x[2])}
	for j := range x {
		before := x[j]
		if got := Central(f, x, j, 1e-6); math.Abs(got-want[j]) > 1e-8 {
			t.Errorf("element %d: %v, want %v", j, got, want[j])
		}
		if x[j] != before {
			t.Errorf("element %d: x[%d] = %v after the check, want %v", j, j, x[j], before)
		}
	}
}
