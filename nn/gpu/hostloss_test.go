package gpu

import (
	"math"
	"testing"

	"github.com/sentibench/sentibench/nn"
)

// TestHostLoss checks the host loss path against binary cross-entropy's closed form.
func TestHostLoss(t *testing.T) {
	logits := []float32{-3, 0.5, 2, -0.25}
	targets := []float32{0, 1, 0, 1}
	val, dz, per, err := hostLoss(nn.NewBCEWithLogits(targets), logits, 4, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for i, z := range logits {
		zz, y := float64(z), float64(targets[i])
		l := math.Max(zz, 0) - zz*y + math.Log1p(math.Exp(-math.Abs(zz)))
		sum += l
		d := (1/(1+math.Exp(-zz)) - y) / 4
		if math.Abs(float64(per[i])-l) > 1e-6 || math.Abs(float64(dz[i])-d) > 1e-6 {
			t.Errorf("example %d: loss %v grad %v, want %v %v", i, per[i], dz[i], l, d)
		}
	}
	if math.Abs(val-sum/4) > 1e-6 {
		t.Fatalf("loss %v, want %v", val, sum/4)
	}
	if _, dz, _, err := hostLoss(nn.NewBCEWithLogits(targets), logits, 4, 1, false); err != nil || dz != nil {
		t.Fatalf("without gradient: %v %v", dz, err)
	}
	if _, _, _, err := hostLoss(nn.NewBCEWithLogits(targets[:3]), logits, 4, 1, true); err == nil {
		t.Fatal("3 targets for 4 logits were accepted")
	}
	if _, _, _, err := hostLoss(nn.NewBCEWithLogits(targets), logits, 2, 1, true); err == nil {
		t.Fatal("a wrong batch shape was accepted")
	}
}
