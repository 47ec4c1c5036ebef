//go:build sentibench_cuda

package gpu

// The tests that need a GPU. Without a usable device (no driver, no GPU: cuInit fails, as with
// the stub libcuda of scripts/cuda-toolkit.sh) they skip with the driver's reason; set
// SENTIBENCH_REQUIRE_GPU=1 to make that a failure (scripts/gpu-check.sh does).

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/sentibench/sentibench/nn"
)

var (
	devOnce sync.Once
	dev     *Device
	devErr  error
)

// device opens GPU 0 once for the package's tests, or skips.
func device(t testing.TB) *Device {
	devOnce.Do(func() { dev, devErr = Open(0) })
	if devErr != nil {
		if os.Getenv("SENTIBENCH_REQUIRE_GPU") == "1" {
			t.Fatalf("no GPU: %v", devErr)
		}
		t.Skipf("no GPU: %v", devErr)
	}
	return dev
}

func TestOpen(t *testing.T) {
	d := device(t)
	free, total, err := d.Info()
	if err != nil || total <= 0 || free <= 0 || free > total {
		t.Fatalf("Info: free %d total %d: %v", free, total, err)
	}
	t.Logf("%s: %.1f of %.1f GiB free", d.Name(), float64(free)/(1<<30), float64(total)/(1<<30))
	if _, err := Open(1 << 20); err == nil {
		t.Fatal("a device that does not exist opened")
	}
}

// TestKeepMask compares the device's dropout hash with the Go one, bit for bit.
func TestKeepMask(t *testing.T) {
	d := device(t)
	sigs, _ := kernelSignatures(kernelSource)
	defer d.enter()()
	q := &queue{be: d, sigs: sigs}
	defer q.release()
	const n = 100003
	for _, p := range []float64{0, 0.25, 0.5} {
		seed := siteSeed(987654321, 3)
		y := q.alloc(n)
		q.launch("keep_mask", gridFor(n), 1, y, int64(n), seed, dropThreshold(p))
		got := make([]float32, n)
		q.download(part{y, got})
		if q.err != nil {
			t.Fatal(q.err)
		}
		for i := range got {
			if (got[i] == 1) != keep(seed, int64(i), dropThreshold(p)) {
				t.Fatalf("p = %v: element %d: device %v, Go %v", p, i, got[i], keep(seed, int64(i), dropThreshold(p)))
			}
		}
	}
}

// TestParityGPU: every model's training step, Adam update and evaluation on the GPU against the
// CPU ops (relative error <= 1e-4).
func TestParityGPU(t *testing.T) {
	d := device(t)
	checkParity(t, func() backend { return d }, 1e-4)
}

// TestKClassParityGPU: every model with K outputs and softmax cross-entropy (on the host), a
// training step and an evaluation on the GPU against the CPU ops.
func TestKClassParityGPU(t *testing.T) {
	d := device(t)
	checkKClassParity(t, func() backend { return d }, 1e-4)
}

// TestDropoutGPU compares training steps with dropout on the GPU and on the emulator: the masks
// are the same function, so the results agree.
func TestDropoutGPU(t *testing.T) {
	d := device(t)
	for _, c := range parityCases() {
		c.cfg.Dropout = 0.4
		t.Run(c.name, func(t *testing.T) {
			in, y := c.batch(11)
			var losses []float64
			var grads [][]float32
			for _, be := range []backend{d, newEmu(t)} {
				m := c.model(t)
				tr, err := newTrainer(be, m, nn.AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
				if err != nil {
					t.Fatal(err)
				}
				if err := tr.Push(nil); err != nil {
					t.Fatal(err)
				}
				res, err := tr.Step(in, nn.NewBCEWithLogits(y), nn.Train, nn.NewRNG(77))
				if err != nil {
					t.Fatal(err)
				}
				if err := tr.Grads(); err != nil {
					t.Fatal(err)
				}
				var g []float32
				for _, p := range m.Params() {
					if !p.Frozen {
						g = append(g, p.Grad...)
					}
				}
				losses, grads = append(losses, res.Loss), append(grads, g)
				tr.Close()
			}
			if math.Abs(losses[0]-losses[1]) > 1e-4*math.Max(losses[1], 1e-3) || relErr(grads[0], grads[1]) > 1e-4 {
				t.Fatalf("GPU loss %v, emulator %v; gradients off by %.3g", losses[0], losses[1], relErr(grads[0], grads[1]))
			}
		})
	}
}

// TestTrainingGPU runs a few training steps of each model on the GPU (see checkTraining).
func TestTrainingGPU(t *testing.T) {
	d := device(t)
	checkTraining(t, func() backend { return d })
}

// BenchmarkLSTMStep times a training step of the recipe's lstm on a batch of 64 reviews of
// about 230 tokens (custom metric: ms/step).
func BenchmarkLSTMStep(b *testing.B) {
	d := device(b)
	cfg, _ := nn.DefaultConfig(nn.KindLSTM, 25002)
	c := parityCase{cfg: cfg, T: 240}
	r := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 64; i++ {
		c.lengths = append(c.lengths, 240-r.IntN(20))
	}
	slices.SortFunc(c.lengths, func(x, y int) int { return y - x })
	m := c.model(b)
	tr, err := NewTrainer(d, m, nn.AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Push(nil); err != nil {
		b.Fatal(err)
	}
	in, y := c.batch(1)
	rng := nn.NewRNG(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Step(in, nn.NewBCEWithLogits(y), nn.Train, rng); err != nil {
			b.Fatal(err)
		}
		if err := tr.Update(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
}

// TestEncoderParity runs the encoder's parity checks (transformers' outputs, the CPU's forward
// pass, other activations, means of hidden states) on the device.
func TestEncoderParity(t *testing.T) {
	d := device(t)
	checkEncoderParity(t, func() backend { return d }, 1e-4)
}
