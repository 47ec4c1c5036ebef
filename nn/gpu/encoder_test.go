package gpu

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/features"
	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/internal/safetensors"
	"github.com/sentibench/sentibench/internal/testutil"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/bert"
)

// encoderRef is the part of nn/bert's reference outputs (scripts/gen_bert_fixtures.py, from
// transformers) that the encoder's parity needs: each text's ids and last hidden state.
type encoderRef struct {
	Texts []struct {
		InputIDs []int32     `json:"input_ids"`
		Hidden   [][]float64 `json:"last_hidden_state"`
	} `json:"texts"`
}

func loadBERT(t testing.TB, dir string) *bert.Model {
	t.Helper()
	impl, err := blas.Load(os.Getenv("SENTIBENCH_BLAS"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := bert.Load(dir, &nn.CPU{BLAS: impl, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// withActivation copies the model directory with config.json's hidden_act replaced.
func withActivation(t testing.TB, dir, act string) string {
	t.Helper()
	out := testutil.CopyDir(t, dir)
	path := filepath.Join(out, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	c["hidden_act"] = act
	b, _ = json.Marshal(c)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// bertShape is an encoder's architecture, for writeRandomBERT.
type bertShape struct {
	name                            string
	layers, hidden, heads, inter, V int
}

// writeRandomBERT writes a BERT of the given shape with random weights (BERT's initialisation:
// normal, standard deviation 0.02; layer norms 1 and 0) in Hugging Face layout into dir, with a
// vocabulary of made-up words: an encoder for timing (the arithmetic depends on the shape
// alone) and for parity tests of shapes the fixtures lack.
func writeRandomBERT(t testing.TB, dir string, s bertShape) {
	t.Helper()
	cfg := map[string]any{"model_type": "bert", "architectures": []string{"BertModel"}, "vocab_size": s.V,
		"hidden_size": s.hidden, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
		"intermediate_size": s.inter, "max_position_embeddings": 512, "type_vocab_size": 2,
		"hidden_act": "gelu", "layer_norm_eps": 1e-12}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	words := []string{"[PAD]"}
	for i := 1; i < s.V; i++ {
		switch i {
		case 100, 101, 102, 103:
			words = append(words, [...]string{"[UNK]", "[CLS]", "[SEP]", "[MASK]"}[i-100])
		default:
			words = append(words, fmt.Sprintf("w%d", i))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte(strings.Join(words, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(s.hidden), uint64(s.layers)))
	var ts []safetensors.Tensor
	add := func(name string, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		switch {
		case strings.HasSuffix(name, "LayerNorm.weight"):
			for i := range v {
				v[i] = 1
			}
		case strings.HasSuffix(name, ".weight"):
			for i := range v {
				v[i] = float32(0.02 * r.NormFloat64())
			}
		}
		ts = append(ts, safetensors.FromFloat32(name, shape, v))
	}
	H, I := s.hidden, s.inter
	add("embeddings.word_embeddings.weight", s.V, H)
	add("embeddings.position_embeddings.weight", 512, H)
	add("embeddings.token_type_embeddings.weight", 2, H)
	add("embeddings.LayerNorm.weight", H)
	add("embeddings.LayerNorm.bias", H)
	for l := 0; l < s.layers; l++ {
		p := fmt.Sprintf("encoder.layer.%d.", l)
		for _, n := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
			add(p+n+".weight", H, H)
			add(p+n+".bias", H)
		}
		add(p+"intermediate.dense.weight", I, H)
		add(p+"intermediate.dense.bias", I)
		add(p+"output.dense.weight", H, I)
		add(p+"output.dense.bias", H)
		for _, n := range []string{"attention.output.LayerNorm", "output.LayerNorm"} {
			add(p+n+".weight", H)
			add(p+n+".bias", H)
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
}

// encoderDiff runs seqs through the CPU model and the device encoder and returns the largest
// absolute difference of their outputs.
func encoderDiff(t *testing.T, be backend, m *bert.Model, seqs [][]int32) float64 {
	t.Helper()
	want, err := m.Forward(seqs)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEncoder(be, m)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got := make([][]float32, len(seqs))
	got[0] = make([]float32, 3, 1<<16) // a reused output keeps its array
	kept := &got[0][:1][0]
	if err := e.ForwardInto(seqs, got); err != nil {
		t.Fatal(err)
	}
	if &got[0][0] != kept {
		t.Error("an output with room enough was reallocated")
	}
	d := 0.0
	for i := range seqs {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("sequence %d: %d values, want %d", i, len(got[i]), len(want[i]))
		}
		for j := range got[i] {
			d = max(d, math.Abs(float64(got[i][j]-want[i][j])))
		}
	}
	return d
}

// checkEncoderParity compares the device encoder on a backend with transformers' outputs and
// with the CPU's forward pass (which is itself checked against transformers in nn/bert): BERT and
// DistilBERT, sequences of mixed lengths padded in one batch, the other activations, a mean of
// hidden states.
func checkEncoderParity(t *testing.T, newBackend func() backend, tol float64) {
	for _, name := range []string{"mini-bert", "mini-distilbert"} {
		dir := filepath.Join("..", "bert", "testdata", name)
		var ref encoderRef
		b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatal(err)
		}
		m := loadBERT(t, dir)
		var seqs [][]int32
		lens := map[int]bool{}
		for _, x := range ref.Texts {
			seqs = append(seqs, x.InputIDs)
			lens[len(x.InputIDs)] = true
		}
		if len(lens) < 3 {
			t.Fatalf("%s: the reference texts have %d distinct lengths; the padding goes untested", name, len(lens))
		}
		e, err := newEncoder(newBackend(), m)
		if err != nil {
			t.Fatal(err)
		}
		got := make([][]float32, len(seqs))
		if err := e.ForwardInto(seqs, got); err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i, x := range ref.Texts {
			for r, row := range x.Hidden {
				for j, v := range row {
					worst = max(worst, math.Abs(float64(got[i][r*len(row)+j])-v))
				}
			}
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if worst > tol {
			t.Errorf("%s: last hidden state differs from transformers' by %.3g", name, worst)
		}
		t.Logf("%s: %d texts of %d lengths in one padded batch, max |diff| from transformers %.2g", name, len(seqs), len(lens), worst)

		if d := encoderDiff(t, newBackend(), m, seqs); d > tol {
			t.Errorf("%s: differs from the CPU's forward pass by %.3g", name, d)
		}
		for _, layers := range [][]int{{0}, {1, -1}, {0, 1, 2}} {
			m.Layers = layers
			if d := encoderDiff(t, newBackend(), m, seqs); d > tol {
				t.Errorf("%s, hidden states %v: differs from the CPU's forward pass by %.3g", name, layers, d)
			}
		}
		m.Layers = nil
		for _, act := range []string{"gelu_new", "relu"} {
			ma := loadBERT(t, withActivation(t, dir, act))
			if d := encoderDiff(t, newBackend(), ma, seqs); d > tol {
				t.Errorf("%s with %s: differs from the CPU's forward pass by %.3g", name, act, d)
			}
		}
	}
}

func TestEncoderParityEmulated(t *testing.T) {
	checkEncoderParity(t, func() backend { return newEmu(t) }, 1e-5)
}

// TestEncoderShapesEmulated compares the device encoder with the CPU's on random encoders of
// shapes the fixtures lack (more heads, more layers, head width not a power of two), on
// sequences of every length from 1 up, in batches padded to their longest.
func TestEncoderShapesEmulated(t *testing.T) {
	for _, s := range []bertShape{{"L3-H48-A4", 3, 48, 4, 96, 500}, {"L1-H36-A6", 1, 36, 6, 40, 300}} {
		dir := t.TempDir()
		writeRandomBERT(t, dir, s)
		m := loadBERT(t, dir)
		r := rand.New(rand.NewPCG(3, 3))
		var seqs [][]int32
		for n := 1; n <= 40; n += 3 {
			seq := make([]int32, n)
			for i := range seq {
				seq[i] = int32(r.IntN(s.V))
			}
			seqs = append(seqs, seq)
		}
		if d := encoderDiff(t, newEmu(t), m, seqs); d > 1e-5 {
			t.Errorf("%s: differs from the CPU's forward pass by %.3g", s.name, d)
		}
	}
}

// TestEncoderErrors checks the encoder's refusals: bad input is an error, never a kernel reading
// past a table.
func TestEncoderErrors(t *testing.T) {
	m := loadBERT(t, filepath.Join("..", "bert", "testdata", "mini-bert"))
	e, err := newEncoder(newEmu(t), m)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		seqs [][]int32
		out  int
		want string
	}{
		{[][]int32{{2, 5, 3}, {2, int32(m.Config.VocabSize), 3}}, 2, "outside the vocabulary"},
		{[][]int32{{2, -1, 3}}, 1, "outside the vocabulary"},
		{[][]int32{{2, 3}, {}}, 2, "sequence 1 is empty"},
		{[][]int32{make([]int32, m.Config.MaxPositions+1)}, 1, "more than the model's"},
		{[][]int32{{2, 3}}, 2, "2 outputs for 1 sequences"},
	}
	for _, c := range cases {
		err := e.ForwardInto(c.seqs, make([][]float32, c.out))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.seqs, err, c.want)
		}
	}
	if err := e.ForwardInto(nil, nil); err != nil {
		t.Errorf("an empty batch: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.ForwardInto([][]int32{{2, 3}}, make([][]float32, 1)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("closed encoder: %v", err)
	}
	m.Layers = []int{9}
	if _, err := newEncoder(newEmu(t), m); err == nil {
		t.Error("an encoder with a hidden state the model lacks was made")
	}
	if _, err := newEncoder(newEmu(t), nil); err == nil {
		t.Error("an encoder without a model was made")
	}
}

// TestEncoderFeatureCacheEmulated builds a feature cache of real IMDB reviews with the shared
// tiny random BERT (bert-base-uncased's vocabulary, 512 positions) on the emulated device, as
// `sentibench embed --device cuda` does, and compares every cached value with the CPU encoder's
// run of the review alone: long reviews truncated at 512 word pieces, batches of mixed lengths.
func TestEncoderFeatureCacheEmulated(t *testing.T) {
	texts := testutil.IMDBReviews(t, 24)
	m := loadBERT(t, testutil.Shared(t, "models/bert-uncased-random-L2-H32"))
	m.Layers = []int{1, 2}
	var enc *Encoder
	opt := features.Options{Model: m, CacheDir: t.TempDir(), BatchSize: 8, BatchTokens: 2048, ChunkTokens: 4096,
		OnDevice: func(m *bert.Model) (features.Forwarder, error) {
			var err error
			enc, err = newEncoder(newEmu(t), m)
			return enc, err
		}}
	dir, err := features.Build(context.Background(), texts, opt)
	if err != nil {
		t.Fatal(err)
	}
	if enc == nil {
		t.Fatal("the cache was built without the device encoder")
	}
	enc.Close()
	r, err := features.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	longest, worst := 0, 0.0
	for i, text := range texts {
		ids := m.Encode(text)
		longest = max(longest, len(ids))
		want, err := m.Forward([][]int32{ids})
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Review(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want[0]) {
			t.Fatalf("review %d: %d values cached, %d computed", i, len(got), len(want[0]))
		}
		for j := range got {
			d := math.Abs(float64(got[j] - want[0][j]))
			if d > 1e-5+math.Abs(float64(want[0][j]))/1024 { // float16: 11 significant bits
				t.Fatalf("review %d value %d: cached %v, CPU encoder %v", i, j, got[j], want[0][j])
			}
			worst = max(worst, d)
		}
	}
	if longest != m.MaxLen() {
		t.Errorf("no review reached the %d word pieces of truncation (longest %d): pick more", m.MaxLen(), longest)
	}
	t.Logf("%d reviews (longest %d word pieces), %d chunks: max |cache - CPU encoder| %.2g", r.Len(), longest, r.Meta().Chunks, worst)
}
