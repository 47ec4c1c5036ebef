package nn

import (
	"math"
	"runtime"
	"testing"

	"github.com/sentibench/sentibench/internal/blas"
)

// TestBatchBytesBoundsAStep: what a forward pass or a training step keeps (its buffers, live
// after a collection) stays under BatchBytes plus a little for the weights, for the word
// models in both modes; and a huge batch saturates instead of overflowing.
func TestBatchBytesBoundsAStep(t *testing.T) {
	impl, err := blas.Load("gonum")
	if err != nil {
		t.Fatal(err)
	}
	const B, T, vocab = 4, 3000, 50
	for _, kind := range []string{KindCNN, KindLSTM} {
		for _, mode := range []Mode{Eval, Train} {
			cfg, err := DefaultConfig(kind, vocab)
			if err != nil {
				t.Fatal(err)
			}
			cfg.EmbedDim, cfg.Hidden, cfg.Filters = 32, 16, 16
			m, err := NewModel(NewCPU(impl, 1), cfg, NewRNG(1))
			if err != nil {
				t.Fatal(err)
			}
			weights := 0
			for _, p := range m.Params() {
				weights += 4 * p.Size()
			}
			in := &Input{T: T, Lengths: make([]int, B), IDs: make([]int32, B*T)}
			for b := range B {
				in.Lengths[b] = T - 100*b
				for k := range in.Lengths[b] {
					in.IDs[b*T+k] = int32(2 + (b+k)%(vocab-2))
				}
			}
			var runner Runner
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			if _, err := runner.Step(m, in, NewBCEWithLogits([]float32{0, 1, 0, 1}), mode, NewRNG(2)); err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(m)
			runtime.KeepAlive(&runner)
			alloc := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			est := BatchBytes(cfg, B, T, mode)
			t.Logf("%s, mode %d: kept %d KiB, estimate %d KiB, weights %d KiB", kind, mode, alloc>>10, est>>10, weights>>10)
			if alloc > est+int64(4*weights)+1<<20 {
				t.Errorf("%s, mode %d: a step kept %d KiB, more than the estimate %d KiB and four times the weights (%d KiB) and 1 MiB",
					kind, mode, alloc>>10, est>>10, weights>>10)
			}
		}
	}
	cfg, _ := DefaultConfig(KindLSTM, 25000)
	if got := BatchBytes(cfg, 1<<40, 1<<40, Train); got != math.MaxInt64 {
		t.Errorf("a batch of 2^40 x 2^40 tokens: %d, want math.MaxInt64", got)
	}
}
