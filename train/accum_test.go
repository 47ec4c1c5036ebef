package train

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/nn"
)

// TestGradAccumMatchesWholeBatch: with dropout 0, a batch's step through N micro-batches gives the
// gradients, loss and (after a few Adam steps) weights of the whole batch's step, within 1e-6
// relative, for the cnn and the lstm (the gradients within 2e-6 and the step's change of the
// weights within 1e-5: both batches round to float32 in another order, over the batch's reviews
// and time steps, and Adam's first steps divide each gradient by its own size). The micro-batches are of unequal sizes (16 reviews in 3),
// so weighting them alike instead of by their reviews would fail it.
func TestGradAccumMatchesWholeBatch(t *testing.T) {
	for _, model := range []string{"cnn", "lstm"} {
		for _, n := range []int{3, 4} {
			t.Run(fmt.Sprintf("%s/%d", model, n), func(t *testing.T) {
				whole := newTestTrainer(t, model, 1)
				accum := newTestTrainer(t, model, n)
				wb := data.BucketBatches(whole.ds.train, whole.ds.lengths, 16, whole.ds.rng)
				ab := data.BucketBatches(accum.ds.train, accum.ds.lengths, 16, accum.ds.rng)
				loss := newLabelLoss(1)
				for i := range 3 {
					wBefore, aBefore := weights(whole.model), weights(accum.model)
					_, wl, wr, err := whole.step(context.Background(), wb[i], len(wb[i]), loss)
					if err != nil {
						t.Fatal(err)
					}
					_, al, ar, err := accum.step(context.Background(), ab[i], len(ab[i]), loss)
					if err != nil {
						t.Fatal(err)
					}
					if wl.lossN != al.lossN || len(wr.Logits) != len(ar.Logits) {
						t.Fatalf("step %d: %d labels and %d logits, whole batch %d and %d", i, al.lossN, len(ar.Logits), wl.lossN, len(wr.Logits))
					}
					if d := math.Abs(wr.Loss-ar.Loss) / math.Abs(wr.Loss); d > 1e-6 {
						t.Errorf("step %d: loss %v, whole batch %v (relative %.2g)", i, ar.Loss, wr.Loss, d)
					}
					wp, ap := whole.model.Params(), accum.model.Params()
					for j, p := range wp {
						if p.Frozen {
							continue
						}
						if d := relDiff(p.Grad, ap[j].Grad); d > gradTolerance {
							t.Errorf("step %d: %s's gradient differs by %.2g (relative)", i, p.Name, d)
						}
						if d := relDiff(p.Data(), ap[j].Data()); d > 1e-6 {
							t.Errorf("step %d: %s's weights differ by %.2g (relative)", i, p.Name, d)
						}
						if d := relDiff(update(wBefore[j], p.Data()), update(aBefore[j], ap[j].Data())); d > updateTolerance {
							t.Errorf("step %d: %s's update differs by %.2g (relative)", i, p.Name, d)
						}
					}
				}
			})
		}
	}
}

// weights copies a model's weights.
func weights(m nn.Model) [][]float32 {
	var out [][]float32
	for _, p := range m.Params() {
		out = append(out, append([]float32(nil), p.Data()...))
	}
	return out
}

// update is after - before.
func update(before, after []float32) []float32 {
	d := make([]float32, len(after))
	for i := range after {
		d[i] = after[i] - before[i]
	}
	return d
}

const (
	gradTolerance   = 2e-6
	updateTolerance = 1e-5
)

// relDiff is |a-b| / |a| (L2 norms).
func relDiff(a, b []float32) float64 {
	var diff, norm float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		diff += d * d
		norm += float64(a[i]) * float64(a[i])
	}
	if norm == 0 {
		return math.Sqrt(diff)
	}
	return math.Sqrt(diff / norm)
}

// newTestTrainer is a trainer of a small model without dropout, with gradAccum micro-batches.
func newTestTrainer(t *testing.T, model string, gradAccum int) *trainer {
	t.Helper()
	cfg := smallConfig(model)
	cfg.Dropout = 0
	cfg.GradAccum = gradAccum
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	cfg, err := cfg.resolved()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.RunDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tr, err := newTrainer(context.Background(), cfg, quietHooks(), Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.close() })
	return tr
}
