package nn

import (
	"encoding/json"
	"flag"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/safetensors"
)

var update = flag.Bool("update", false, "rewrite testdata/go_cnn_model.safetensors (then run scripts/gen_nn_vectors.py)")

func TestDefaultConfigAndValidate(t *testing.T) {
	for _, kind := range []string{KindLSTM, KindCNN, KindBiGRU} {
		c, err := DefaultConfig(kind, 25002)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		want := map[string]float64{KindLSTM: 0.5, KindCNN: 0.5, KindBiGRU: 0.25}[kind]
		if c.Dropout != want || c.Outputs != 1 {
			t.Fatalf("%s: dropout %v outputs %d", kind, c.Dropout, c.Outputs)
		}
	}
	if _, err := DefaultConfig("rnn", 10); err == nil || !strings.Contains(err.Error(), `"rnn"`) {
		t.Fatalf("unknown kind: err = %v", err)
	}
	base, _ := DefaultConfig(KindCNN, 100)
	for name, mutate := range map[string]func(c *Config){
		"dropout 1":       func(c *Config) { c.Dropout = 1 },
		"dropout NaN":     func(c *Config) { c.Dropout = math.NaN() },
		"no vocabulary":   func(c *Config) { c.VocabSize = 0 },
		"pad outside":     func(c *Config) { c.PadID = 100 },
		"no widths":       func(c *Config) { c.Widths = nil },
		"zero width":      func(c *Config) { c.Widths = []int{3, 0} },
		"no filters":      func(c *Config) { c.Filters = 0 },
		"no outputs":      func(c *Config) { c.Outputs = 0 },
		"no embedding":    func(c *Config) { c.EmbedDim = 0 },
		"huge embedding":  func(c *Config) { c.VocabSize, c.EmbedDim = 1<<20, 1<<12 },
		"lstm: no hidden": func(c *Config) { c.Kind, c.Hidden, c.Layers = KindLSTM, 0, 1 },
		"lstm: no layers": func(c *Config) { c.Kind, c.Hidden, c.Layers = KindLSTM, 8, 0 },
		"bigru: no input": func(c *Config) { c.Kind, c.Hidden, c.Layers, c.InputDim = KindBiGRU, 8, 1, 0 },
		// Each tensor fits, the model does not: a run.json damaged into a million layers or
		// filters must be an error, not an allocation that kills the process.
		"lstm: a million layers": func(c *Config) { c.Kind, c.Hidden, c.Layers = KindLSTM, 256, 1<<20 },
		"cnn: a billion filters": func(c *Config) { c.Filters = 1 << 30 },
		"cnn: many widths":       func(c *Config) { c.Widths = slices.Repeat([]int{1000}, 1<<14) },
		"cnn: a billion outputs": func(c *Config) { c.Outputs = 1 << 30 },
		"lstm: 100m outputs":     func(c *Config) { c.Kind, c.Hidden, c.Layers, c.Outputs = KindLSTM, 256, 1, 1e8 },
	} {
		c := base
		c.Widths = append([]int(nil), base.Widths...)
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		} else if _, err2 := NewModel(testCPU(t), c, NewRNG(1)); err2 == nil {
			t.Errorf("%s: NewModel accepted it", name)
		}
	}
}

// smallConfig reads the model's dimensions from a vectors file's metadata.
func smallConfig(t *testing.T, kind string, meta map[string]string) Config {
	t.Helper()
	var dims struct{ Vocab, Dim, Filters, Hidden, Layers, Input int }
	if err := json.Unmarshal([]byte(meta["meta"]), &dims); err != nil {
		t.Fatalf("metadata %q: %v", meta["meta"], err)
	}
	c, err := DefaultConfig(kind, dims.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	c.Dropout = 0
	c.EmbedDim = dims.Dim
	if kind == KindBiGRU {
		c.EmbedDim, c.InputDim = 0, dims.Input
	}
	if kind == KindCNN {
		c.Filters = dims.Filters
	} else {
		c.Hidden, c.Layers = dims.Hidden, dims.Layers
	}
	return c
}

// modelParity loads a PyTorch-written checkpoint into our model, compares its logits on each
// batch, then trains 5 Adam steps and compares the losses and the final weights.
func modelParity(t *testing.T, kind string) { modelParityPool(t, kind, "", kind) }

// modelParityPool is modelParity for a model with the given pooling, whose vectors are
// testdata/<file>_model_*.safetensors.
func modelParityPool(t *testing.T, kind, pool, file string) {
	dev := testCPU(t)
	init := filepath.Join("testdata", file+"_model_init.safetensors")
	f, err := safetensors.Open(init)
	if err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig(t, kind, f.Metadata)
	cfg.Pool = pool
	f.Close()
	m, err := NewModel(dev, cfg, NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := LoadWeights(init, m); err != nil {
		t.Fatal(err)
	}
	v := openVectors(t, file+"_model_steps.safetensors")
	type batch struct {
		in *Input
		y  []float32
	}
	var batches []batch
	for i := 0; ; i++ {
		p := "batch" + strconv.Itoa(i) + "."
		if _, ok := v.f.Tensors[p+"lengths"]; !ok {
			break
		}
		lengths := v.ints(p + "lengths")
		in := &Input{Lengths: lengths, T: lengths[0]}
		if kind == KindBiGRU {
			in.Feats, in.Dim = v.f32(p+"feats"), cfg.InputDim
		} else {
			in.IDs = v.ids(p + "ids")
			in.T = len(in.IDs) / len(lengths)
		}
		batches = append(batches, batch{in, v.f32(p + "labels")})
	}
	var r Runner
	for i, b := range batches {
		res, err := r.Step(m, b.in, nil, Eval, nil)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "eval logits of batch "+strconv.Itoa(i), res.Logits, v.f32("batch"+strconv.Itoa(i)+".logits"), 1e-5)
	}
	opt, err := NewAdam(AdamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := v.f32("losses")
	got := make([]float32, len(want))
	rng := NewRNG(2)
	for k := range want {
		b := batches[k%len(batches)]
		res, err := r.Step(m, b.in, NewBCEWithLogits(b.y), Train, rng)
		if err != nil {
			t.Fatal(err)
		}
		got[k] = float32(res.Loss)
		if err := opt.Step(m.Params()); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("losses: ours %v, PyTorch %v", got, want)
	assertClose(t, "loss trajectory", got, want, 1e-4)
	for _, p := range m.Params() {
		assertClose(t, "weights after 5 steps: "+p.Name, p.Data(), v.f32("final."+p.Name), 1e-5)
	}
}

func TestCNNModelParity(t *testing.T) { modelParity(t, KindCNN) }

func TestWeightsRoundTripAndErrors(t *testing.T) {
	dev := testCPU(t)
	cfg, _ := DefaultConfig(KindCNN, 30)
	cfg.EmbedDim, cfg.Filters = 6, 3
	a, _ := NewModel(dev, cfg, NewRNG(1))
	b, _ := NewModel(dev, cfg, NewRNG(2))
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := SaveWeights(path, a, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if err := LoadWeights(path, b); err != nil {
		t.Fatal(err)
	}
	for i, p := range a.Params() {
		q := b.Params()[i]
		for j := range p.Data() {
			if p.Data()[j] != q.Data()[j] {
				t.Fatalf("%s differs after the round trip", p.Name)
			}
		}
	}
	// A model of another shape, or a file with missing or extra tensors, is refused.
	other := cfg
	other.Filters = 4
	c, _ := NewModel(dev, other, NewRNG(3))
	if err := LoadWeights(path, c); err == nil || !strings.Contains(err.Error(), "convs.0.weight has shape [3 6 3]") {
		t.Fatalf("wrong shapes: err = %v", err)
	}
	ts := ParamTensors(a.Params())
	safetensors.WriteFile(path, append(ts[1:], safetensors.FromFloat32("extra", []int{1}, []float32{1})), nil)
	err := LoadWeights(path, b)
	if err == nil || !strings.Contains(err.Error(), "missing: embedding.weight") || !strings.Contains(err.Error(), "unexpected: extra") {
		t.Fatalf("missing and extra tensors: err = %v", err)
	}
	ts[0] = safetensors.FromInt64("embedding.weight", []int{30, 6}, make([]int64, 180))
	safetensors.WriteFile(path, ts, nil)
	if err := LoadWeights(path, b); err == nil || !strings.Contains(err.Error(), "dtype I64") {
		t.Fatalf("integer tensor: err = %v", err)
	}
}

func TestAdamStateRoundTrip(t *testing.T) {
	params := []*Param{NewParam("a.weight", 2, 3), NewParam("a.bias", 2)}
	opt, _ := NewAdam(AdamConfig{})
	for k := 0; k < 3; k++ {
		for _, p := range params {
			for i := range p.Grad {
				p.Grad[i] = float32(k+i) * 0.1
			}
		}
		opt.Step(params)
	}
	path := filepath.Join(t.TempDir(), "adam.safetensors")
	if err := safetensors.WriteFile(path, AdamStateTensors(opt.State()), nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := AdamStateFromFile(f)
	if err != nil {
		t.Fatal(err)
	}
	// Two optimisers, one restored from the file, take the same next step bit for bit.
	clone := []*Param{NewParam("a.weight", 2, 3), NewParam("a.bias", 2)}
	for i, p := range params {
		copy(clone[i].Data(), p.Data())
		copy(clone[i].Grad, p.Grad)
	}
	opt2, _ := NewAdam(AdamConfig{})
	if err := opt2.SetState(st, clone); err != nil {
		t.Fatal(err)
	}
	opt.Step(params)
	opt2.Step(clone)
	for i, p := range params {
		for j, x := range p.Data() {
			if x != clone[i].Data()[j] {
				t.Fatalf("%s[%d]: %v after restore, %v without", p.Name, j, clone[i].Data()[j], x)
			}
		}
	}
	if err := opt2.SetState(st, params[:1]); err == nil {
		t.Fatal("state for a parameter the model lacks: no error")
	}
}

// TestWriteGoCheckpoint writes (with -update) or checks a Go-initialised cnn model's weights
// and its logits on a batch; scripts/gen_nn_vectors.py loads the file into torch_ref's
// CNNClassifier with load_state_dict(strict=True) and compares the logits.
func TestWriteGoCheckpoint(t *testing.T) {
	dev := testCPU(t)
	cfg, _ := DefaultConfig(KindCNN, 30)
	cfg.EmbedDim, cfg.Filters = 8, 5
	m, err := NewModel(dev, cfg, NewRNG(77))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := tinyBatch(NewRNG(78), 30, 1, []int{9, 6, 6, 2})
	var r Runner
	res, err := r.Step(m, in, nil, Eval, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "go_cnn_model.safetensors")
	if *update {
		cj, _ := json.Marshal(cfg)
		bj, _ := json.Marshal(map[string]any{"ids": in.IDs, "lengths": in.Lengths, "logits": res.Logits})
		if err := SaveWeights(path, m, map[string]string{"config": string(cj), "batch": string(bj)}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatalf("%v (write it with -update)", err)
	}
	defer f.Close()
	var batch struct{ Logits []float32 }
	if err := json.Unmarshal([]byte(f.Metadata["batch"]), &batch); err != nil {
		t.Fatal(err)
	}
	// Recorded with OpenBLAS; another BLAS (gonum's pure Go, as with CGO_ENABLED=0) sums the
	// products in another order, a few float32 ulps away.
	assertClose(t, "logits recorded in the checkpoint", res.Logits, batch.Logits, 1e-5)
}

func TestLSTMModelParity(t *testing.T) { modelParity(t, KindLSTM) }

func TestBiGRUModelParity(t *testing.T) { modelParity(t, KindBiGRU) }

// TestBiGRUConcatPoolParity: the bigru with concat pooling against the same head in PyTorch
// (scripts/gen_nn_vectors.py's ConcatGRUHead): logits, 5 Adam steps, final weights.
func TestBiGRUConcatPoolParity(t *testing.T) {
	modelParityPool(t, KindBiGRU, PoolConcat, "bigru_concat")
}

func TestAdamWorkersAgree(t *testing.T) {
	run := func(workers int) []float32 {
		p := NewParam("big.weight", 300000)
		rng := NewRNG(6)
		for i := range p.Data() {
			p.Data()[i] = float32(rng.NormFloat64())
		}
		opt, _ := NewAdam(AdamConfig{Workers: workers, WeightDecay: 0.01})
		for k := 0; k < 3; k++ {
			for i := range p.Grad {
				p.Grad[i] = float32(rng.NormFloat64())
			}
			if err := opt.Step([]*Param{p}); err != nil {
				t.Fatal(err)
			}
		}
		return p.Data()
	}
	one, three := run(1), run(3)
	for i := range one {
		if one[i] != three[i] {
			t.Fatalf("element %d: %v with 1 worker, %v with 3", i, one[i], three[i])
		}
	}
}
