package nn

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// kClassModels are small configurations of every model kind with K outputs.
func kClassModels(K int) []namedConfig {
	return []namedConfig{
		{"lstm", Config{Kind: KindLSTM, VocabSize: 40, PadID: 1, EmbedDim: 6, Hidden: 5, Layers: 2,
			Bidirectional: true, Outputs: K}},
		{"cnn", Config{Kind: KindCNN, VocabSize: 40, PadID: 1, EmbedDim: 6, Filters: 4, Widths: []int{2, 3},
			Outputs: K}},
		{"bigru", Config{Kind: KindBiGRU, PadID: -1, InputDim: 8, Hidden: 5, Layers: 2, Bidirectional: true,
			Outputs: K}},
		{"bigru-concat", Config{Kind: KindBiGRU, PadID: -1, InputDim: 8, Hidden: 5, Layers: 1, Bidirectional: true,
			Pool: PoolConcat, Outputs: K}},
	}
}

// namedConfig is a test's model configuration and its name.
type namedConfig struct {
	name string
	cfg  Config
}

// separableBatch returns a batch of 2K sequences (lengths descending) whose class b % K shows in
// every position: word models get tokens from a range of ids of the class's own, feature models
// a feature vector pointing the class's own way (plus noise).
func separableBatch(rng *RNG, cfg Config, K int) (*Input, []int) {
	B := 2 * K
	lengths := make([]int, B)
	for b := range lengths {
		lengths[b] = 9 - b*6/B // 9 down to 4
	}
	T := lengths[0]
	in := &Input{Lengths: lengths, T: T}
	labels := make([]int, B)
	if cfg.Kind == KindBiGRU {
		in.Dim = cfg.InputDim
		in.Feats = make([]float32, T*B*in.Dim)
	} else {
		in.IDs = make([]int32, B*T)
	}
	for b, l := range lengths {
		c := b % K
		labels[b] = c
		for t := 0; t < T; t++ {
			if cfg.Kind == KindBiGRU {
				if t < l {
					row := in.Feats[(t*B+b)*in.Dim : (t*B+b+1)*in.Dim]
					for k := range row {
						row[k] = float32(0.3 * rng.NormFloat64())
					}
					row[c%in.Dim] += 2
				}
				continue
			}
			id := int32(cfg.PadID)
			if t < l {
				id = int32(2 + c*5 + rng.IntN(5)) // ids 2.., five a class
			}
			in.IDs[b*T+t] = id
		}
	}
	return in, labels
}

// TestModelsTrainKClasses: every model with K = 3 and 5 outputs has a K-row classifier, gives
// K logits per example, trains with softmax cross-entropy on a small separable batch (the loss
// falls, every trainable parameter gets a gradient) and then classifies the batch right.
func TestModelsTrainKClasses(t *testing.T) {
	dev := testCPU(t)
	for _, K := range []int{3, 5} {
		for _, c := range kClassModels(K) {
			cfg := c.cfg
			t.Run(fmt.Sprintf("%s/K=%d", c.name, K), func(t *testing.T) {
				rng := NewRNG(uint64(10 + K))
				m, err := NewModel(dev, cfg, rng)
				if err != nil {
					t.Fatal(err)
				}
				ps := m.Params()
				fc := ps[len(ps)-2:]
				if fc[0].Name != "fc.weight" || fc[0].Shape[0] != K || !slices.Equal(fc[1].Shape, []int{K}) {
					t.Fatalf("classifier %v %v, want fc.weight [%d, in] and fc.bias [%d]", fc[0], fc[1], K, K)
				}
				in, labels := separableBatch(rng, cfg, K)
				B := len(labels)
				loss := NewSoftmaxCrossEntropy(labels)
				opt, err := NewAdam(AdamConfig{LR: 2e-2})
				if err != nil {
					t.Fatal(err)
				}
				var r Runner
				var first, last float64
				for step := 0; step < 40; step++ {
					res, err := r.Step(m, in, loss, Train, rng)
					if err != nil {
						t.Fatal(err)
					}
					if len(res.Logits) != B*K || len(res.PerExample) != B {
						t.Fatalf("%d logits and %d per-example losses for %d examples of %d classes", len(res.Logits), len(res.PerExample), B, K)
					}
					if step == 0 {
						first = res.Loss
						if math.Abs(first-math.Log(float64(K))) > 0.5 {
							t.Errorf("first loss %.4f, far from log K = %.4f for a fresh model", first, math.Log(float64(K)))
						}
						for _, p := range ps {
							if !p.Frozen && allZero(p.Grad) {
								t.Errorf("%s got no gradient", p.Name)
							}
						}
					}
					last = res.Loss
					if err := opt.Step(ps); err != nil {
						t.Fatal(err)
					}
				}
				t.Logf("loss %.4f -> %.4f", first, last)
				if !(last < first/4) {
					t.Fatalf("training did not reduce the loss: %.4f -> %.4f", first, last)
				}
				res, err := r.Step(m, in, nil, Eval, nil)
				if err != nil {
					t.Fatal(err)
				}
				for b, y := range labels {
					if got := Predicted(res.Logits[b*K : (b+1)*K]); got != y {
						t.Errorf("example %d: class %d, want %d (logits %v)", b, got, y, res.Logits[b*K:(b+1)*K])
					}
				}
			})
		}
	}
}
