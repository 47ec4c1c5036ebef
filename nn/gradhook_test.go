package nn

import (
	"math"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

// announcement is one call of Runner.OnGrad: the parameter, and the trainable parameters
// whose Grad still held the sentinel NaNs then (their layers' backward pass had not run).
type announcement struct {
	name      string
	untouched []string
}

// onGradRecorder steps a model with Runner.OnGrad set, recording the announcements.
type onGradRecorder struct {
	r      Runner
	m      Model
	events []announcement
}

func newOnGradRecorder(m Model) *onGradRecorder {
	rec := &onGradRecorder{m: m}
	rec.r.OnGrad = func(p *Param) {
		a := announcement{name: p.Name}
		for _, q := range trainable(m) {
			if q != p && allNaN(q.Grad) {
				a.untouched = append(a.untouched, q.Name)
			}
		}
		rec.events = append(rec.events, a)
	}
	return rec
}

// step fills every gradient with NaNs (the fused ops overwrite their gradients, never read
// them), then runs a training step.
func (rec *onGradRecorder) step(t *testing.T, in *Input, loss Loss, rng *RNG) StepResult {
	t.Helper()
	for _, p := range trainable(rec.m) {
		for i := range p.Grad {
			p.Grad[i] = float32(math.NaN())
		}
	}
	rec.events = rec.events[:0]
	res, err := rec.r.Step(rec.m, in, loss, Train, rng)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func allNaN(s []float32) bool {
	for _, v := range s {
		if !math.IsNaN(float64(v)) {
			return false
		}
	}
	return len(s) > 0
}

// twinModels returns two models of cfg with the same weights.
func twinModels(t *testing.T, cfg Config) (Model, Model) {
	t.Helper()
	a, err := NewModel(testCPU(t), cfg, NewRNG(7))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewModel(testCPU(t), cfg, NewRNG(7))
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// sameGrads requires the two models' gradients and the two steps' losses to be bit-identical.
func sameGrads(t *testing.T, step int, want, got Model, wantRes, gotRes StepResult) {
	t.Helper()
	if math.Float64bits(wantRes.Loss) != math.Float64bits(gotRes.Loss) || !slices.Equal(wantRes.Logits, gotRes.Logits) {
		t.Errorf("step %d: loss %v, want %v (or other logits)", step, gotRes.Loss, wantRes.Loss)
	}
	for i, p := range want.Params() {
		q := got.Params()[i]
		for j := range p.Grad {
			if math.Float32bits(p.Grad[j]) != math.Float32bits(q.Grad[j]) {
				t.Errorf("step %d: gradient of %s differs at %d: %v, want %v", step, p.Name, j, q.Grad[j], p.Grad[j])
				break
			}
		}
	}
}

// layerOfParam names the layer of one of the recipe's parameters: "fc", "rnn l1", "rnn l0",
// "convs" or "embedding".
func layerOfParam(name string) string {
	switch {
	case strings.HasPrefix(name, "rnn.") && strings.Contains(name, "_l1"):
		return "rnn l1"
	case strings.HasPrefix(name, "rnn.") && strings.Contains(name, "_l0"):
		return "rnn l0"
	}
	return name[:strings.Index(name, ".")]
}

// TestRunnerOnGrad: with Runner.OnGrad set, a training step announces every trainable
// parameter once, layer by layer from the last (the lstm's two recurrent layers apart), each
// layer's gradients before the backward pass of the layers below it has run (their gradients
// still hold the NaNs the test put there), and computes the same gradients and loss, bit for
// bit, as a step without.
func TestRunnerOnGrad(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		layers []string // in the order of the announcements
	}{
		{KindCNN, []string{"fc", "convs", "embedding"}},
		{KindLSTM, []string{"fc", "rnn l1", "rnn l0", "embedding"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			cfg, err := DefaultConfig(tc.kind, 50)
			if err != nil {
				t.Fatal(err)
			}
			cfg.EmbedDim, cfg.Filters, cfg.Hidden, cfg.Dropout = 8, 4, 6, 0.3
			plain, hooked := twinModels(t, cfg)
			var r Runner
			rec := newOnGradRecorder(hooked)
			rngA, rngB := NewRNG(3), NewRNG(3)
			in, y := tinyBatch(NewRNG(5), 50, 1, []int{12, 9, 7, 3, 1})
			for step := range 3 {
				want, err := r.Step(plain, in, NewBCEWithLogits(y), Train, rngA)
				if err != nil {
					t.Fatal(err)
				}
				got := rec.step(t, in, NewBCEWithLogits(y), rngB)
				sameGrads(t, step, plain, hooked, want, got)

				var names, layers []string
				for _, a := range rec.events {
					names = append(names, a.name)
					if l := layerOfParam(a.name); len(layers) == 0 || layers[len(layers)-1] != l {
						layers = append(layers, l)
					}
				}
				var all []string
				for _, p := range trainable(hooked) {
					all = append(all, p.Name)
				}
				if sorted := slices.Sorted(slices.Values(names)); !slices.Equal(sorted, slices.Sorted(slices.Values(all))) {
					t.Fatalf("step %d: announced %v, want each of %v once", step, names, all)
				}
				if !slices.Equal(layers, tc.layers) {
					t.Errorf("step %d: layers announced in the order %v, want %v", step, layers, tc.layers)
				}
				// When a layer is announced, the layers below have not run their backward pass.
				for _, a := range rec.events {
					below := false
					for _, l := range tc.layers {
						if l == layerOfParam(a.name) {
							below = true
							continue
						}
						if !below {
							continue
						}
						for _, p := range trainable(hooked) {
							if layerOfParam(p.Name) == l && !slices.Contains(a.untouched, p.Name) {
								t.Errorf("step %d: when %s was announced, %s (a layer below) had its gradient already", step, a.name, p.Name)
							}
						}
					}
				}
			}
			var names []string
			for _, a := range rec.events {
				names = append(names, a.name)
			}
			t.Logf("announced: %v", names)
		})
	}
}

// usedTwice is a model whose fc.bias feeds a Gorgonia op besides its layer.
type usedTwice struct{ Model }

func (m usedTwice) Forward(g *G.ExprGraph, in *Input, mode Mode, rng *RNG) (*G.Node, error) {
	logits, err := m.Model.Forward(g, in, mode, rng)
	if err != nil {
		return nil, err
	}
	params := m.Params()
	b, err := paramNode(g, params[len(params)-1])
	if err != nil {
		return nil, err
	}
	sum, err := G.Sum(b)
	if err != nil {
		return nil, err
	}
	return G.Add(logits, sum)
}

// TestRunnerOnGradUsedTwice: a parameter used by two ops (here one of Gorgonia's) is announced
// once, with its summed gradient, after the others: when the backward pass has ended.
func TestRunnerOnGradUsedTwice(t *testing.T) {
	cfg, err := DefaultConfig(KindCNN, 50)
	if err != nil {
		t.Fatal(err)
	}
	cfg.EmbedDim, cfg.Filters, cfg.Dropout = 8, 4, 0
	plainModel, hookedModel := twinModels(t, cfg)
	plain, hooked := usedTwice{plainModel}, usedTwice{hookedModel}
	var r Runner
	rec := newOnGradRecorder(hooked)
	in, y := tinyBatch(NewRNG(5), 50, 1, []int{12, 9, 7, 3, 1})
	want, err := r.Step(plain, in, NewBCEWithLogits(y), Train, NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	got := rec.step(t, in, NewBCEWithLogits(y), NewRNG(1))
	sameGrads(t, 0, plain, hooked, want, got)
	var names []string
	for _, a := range rec.events {
		names = append(names, a.name)
	}
	if len(names) != len(trainable(hooked)) || names[len(names)-1] != "fc.bias" || slices.Index(names, "fc.bias") != len(names)-1 {
		t.Errorf("announced %v, want every parameter once, fc.bias last", names)
	}
}
