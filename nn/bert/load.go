package bert

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/safetensors"
	"github.com/sentibench/sentibench/internal/torchbin"
	"github.com/sentibench/sentibench/nn"
)

// Model is a loaded encoder: weights, tokenizer, and the CPU it runs on. It is read-only after
// Load, and its methods are safe for concurrent use.
type Model struct {
	Config Config
	// Dir is the model directory it was loaded from.
	Dir string
	// Tokenizer is the model's WordPiece tokenizer.
	Tokenizer *data.WordPiece
	// WeightsFile is the checkpoint that was read (model.safetensors or pytorch_model.bin).
	WeightsFile string
	// TruncateHead, when > 0, makes Encode truncate a long text head+tail: its first
	// TruncateHead word pieces and its last MaxLen()-2-TruncateHead (see
	// data.WordPiece.EncodeHeadTail). 0 keeps the first MaxLen()-2, as transformers does.
	TruncateHead int
	// Layers, when set, makes the output of Forward the mean of these hidden states instead of
	// the last one. They are numbered as transformers' hidden_states: 0 is the embeddings'
	// output, i (1..Config.Layers) layer i's; -1 is the last, -2 the one before, and so on.
	// Check them with CheckLayers; nil (or the last alone) is the last hidden state.
	Layers []int

	cpu       *nn.CPU
	act       func([]float32)
	word      []float32 // [vocab, H]
	pos       []float32 // [positions, H]
	typ0      []float32 // [H]: token type 0 (zeros for DistilBERT)
	embG      []float32
	embB      []float32
	layers    []layer
	poolW     []float32 // [H, H], nil when the checkpoint has no pooler
	poolB     []float32
	weightsID string
	work      sync.Pool // *workspace
}

type layer struct {
	qkvW, qkvB []float32 // [3H, H]: query, key, value rows
	oW, oB     []float32 // [H, H]
	ln1G, ln1B []float32
	iW, iB     []float32 // [I, H]
	o2W, o2B   []float32 // [H, I]
	ln2G, ln2B []float32
}

// WeightsFiles lists the checkpoint names Load looks for, in order of preference.
var weightsFiles = []string{"model.safetensors", "pytorch_model.bin"}

// Load reads a Hugging Face model directory: config.json, model.safetensors (or, when that is
// absent, pytorch_model.bin, read without running its pickle code), and tokenizer.json or
// vocab.txt. cpu gives the BLAS for the matrix products and the number of worker goroutines.
func Load(dir string, cpu *nn.CPU) (*Model, error) {
	if cpu == nil || cpu.BLAS == nil {
		return nil, fmt.Errorf("bert: Load needs a CPU device with a BLAS")
	}
	cfg, err := ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, Dir: dir, cpu: cpu}
	m.act, _ = activation(cfg.Activation)
	var src tensorSource
	for _, name := range weightsFiles {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if name == "model.safetensors" {
			f, err := safetensors.Open(p)
			if err != nil {
				return nil, fmt.Errorf("bert: %w", err)
			}
			src = stSource{f}
		} else {
			f, err := torchbin.Open(p)
			if err != nil {
				return nil, fmt.Errorf("bert: %w", err)
			}
			src = binSource{f}
		}
		m.WeightsFile = p
		break
	}
	if src == nil {
		if _, err := os.Stat(filepath.Join(dir, "model.safetensors.index.json")); err == nil {
			return nil, fmt.Errorf("bert: %s: sharded checkpoints (model.safetensors.index.json) are not supported", dir)
		}
		return nil, fmt.Errorf("bert: %s holds no weights (%s)", dir, strings.Join(weightsFiles, " or "))
	}
	defer src.Close()
	if err := m.loadWeights(src); err != nil {
		return nil, err
	}
	tok, err := data.LoadWordPiece(dir)
	if err != nil {
		return nil, fmt.Errorf("bert: %w", err)
	}
	if tok.VocabSize() > cfg.VocabSize {
		return nil, fmt.Errorf("bert: %s: the tokenizer has %d ids but the model's vocabulary only %d", dir, tok.VocabSize(), cfg.VocabSize)
	}
	m.Tokenizer = tok
	return m, nil
}

// tensorSource is a checkpoint: safetensors or torch.save.
type tensorSource interface {
	names() []string
	shape(name string) ([]int, bool)
	float32(name string, want ...int) ([]float32, error)
	path() string
	Close() error
}

type stSource struct{ f *safetensors.File }

func (s stSource) names() []string {
	var out []string
	for n := range s.f.Tensors {
		out = append(out, n)
	}
	return out
}
func (s stSource) shape(name string) ([]int, bool) {
	t, ok := s.f.Tensors[name]
	return t.Shape, ok
}
func (s stSource) float32(name string, want ...int) ([]float32, error) {
	return s.f.Float32(name, want...)
}
func (s stSource) path() string { return s.f.Path() }
func (s stSource) Close() error { return s.f.Close() }

type binSource struct{ f *torchbin.File }

func (s binSource) names() []string {
	var out []string
	for n := range s.f.Tensors {
		out = append(out, n)
	}
	return out
}
func (s binSource) shape(name string) ([]int, bool) {
	t, ok := s.f.Tensors[name]
	return t.Shape, ok
}
func (s binSource) float32(name string, want ...int) ([]float32, error) {
	return s.f.Float32(name, want...)
}
func (s binSource) path() string { return s.f.Path() }
func (s binSource) Close() error { return s.f.Close() }

// loader reads the named tensors of one architecture, hashing what it reads.
type loader struct {
	src    tensorSource
	prefix string
	h      hash.Hash
}

// find returns the first of names (without the prefix) that the checkpoint holds.
func (l *loader) find(names ...string) (string, bool) {
	for _, n := range names {
		if _, ok := l.src.shape(l.prefix + n); ok {
			return n, true
		}
	}
	return "", false
}

// get reads a tensor of the given shape. Alternative names (old checkpoints' LayerNorm.gamma
// and .beta) may follow the first.
func (l *loader) get(shape []int, names ...string) ([]float32, error) {
	n, ok := l.find(names...)
	if !ok {
		return nil, fmt.Errorf("bert: %s: tensor %q is missing", l.src.path(), l.prefix+names[0])
	}
	v, err := l.src.float32(l.prefix+n, shape...)
	if err != nil {
		return nil, fmt.Errorf("bert: %w", err)
	}
	// The hash covers the canonical name, the shape and the float32 values.
	fmt.Fprintf(l.h, "%s %v\n", names[0], shape)
	var b [4]byte
	for _, x := range v {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(x))
		l.h.Write(b[:])
	}
	return v, nil
}

// ln reads a layer norm's weight and bias.
func (l *loader) ln(base string, n int) (g, b []float32, err error) {
	if g, err = l.get([]int{n}, base+".weight", base+".gamma"); err != nil {
		return nil, nil, err
	}
	b, err = l.get([]int{n}, base+".bias", base+".beta")
	return g, b, err
}

// linear reads a torch.nn.Linear: weight [out, in], bias [out].
func (l *loader) linear(base string, out, in int) (w, b []float32, err error) {
	if w, err = l.get([]int{out, in}, base+".weight"); err != nil {
		return nil, nil, err
	}
	b, err = l.get([]int{out}, base+".bias")
	return w, b, err
}

// detectPrefix finds the prefix in front of the encoder's tensor names ("", "bert.", ...).
func detectPrefix(src tensorSource, anchor string) (string, error) {
	var found []string
	for _, n := range src.names() {
		if n == anchor {
			found = append(found, "")
		} else if p, ok := strings.CutSuffix(n, "."+anchor); ok {
			found = append(found, p+".")
		}
	}
	sort.Strings(found)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("bert: %s: tensor %q is missing (is this a BERT-family checkpoint?)", src.path(), anchor)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("bert: %s: tensor %q appears under several prefixes %q", src.path(), anchor, found)
}

func (m *Model) loadWeights(src tensorSource) error {
	c := m.Config
	H, I := c.Hidden, c.Intermediate
	anchor := "embeddings.word_embeddings.weight"
	prefix, err := detectPrefix(src, anchor)
	if err != nil {
		return err
	}
	l := &loader{src: src, prefix: prefix, h: sha256.New()}
	fmt.Fprintf(l.h, "sentibench encoder v1 %s H=%d L=%d heads=%d I=%d P=%d act=%s eps=%g\n",
		c.ModelType, H, c.Layers, c.Heads, I, c.MaxPositions, c.Activation, c.LayerNormEps)
	if m.word, err = l.get([]int{c.VocabSize, H}, anchor); err != nil {
		return err
	}
	if _, ok := l.find("embeddings.position_embeddings.weight"); !ok && c.Sinusoidal {
		m.pos = sinusoidal(c.MaxPositions, H)
	} else if m.pos, err = l.get([]int{c.MaxPositions, H}, "embeddings.position_embeddings.weight"); err != nil {
		return err
	}
	m.typ0 = make([]float32, H)
	if c.ModelType == "bert" && c.TypeVocabSize > 0 {
		typ, err := l.get([]int{c.TypeVocabSize, H}, "embeddings.token_type_embeddings.weight")
		if err != nil {
			return err
		}
		copy(m.typ0, typ[:H])
	}
	if m.embG, m.embB, err = l.ln("embeddings.LayerNorm", H); err != nil {
		return err
	}
	m.layers = make([]layer, c.Layers)
	for i := range m.layers {
		ly := &m.layers[i]
		var names [8]string
		if c.ModelType == "distilbert" {
			p := fmt.Sprintf("transformer.layer.%d.", i)
			names = [8]string{p + "attention.q_lin", p + "attention.k_lin", p + "attention.v_lin", p + "attention.out_lin",
				p + "sa_layer_norm", p + "ffn.lin1", p + "ffn.lin2", p + "output_layer_norm"}
		} else {
			p := fmt.Sprintf("encoder.layer.%d.", i)
			names = [8]string{p + "attention.self.query", p + "attention.self.key", p + "attention.self.value",
				p + "attention.output.dense", p + "attention.output.LayerNorm", p + "intermediate.dense",
				p + "output.dense", p + "output.LayerNorm"}
		}
		ly.qkvW = make([]float32, 0, 3*H*H)
		ly.qkvB = make([]float32, 0, 3*H)
		for _, n := range names[:3] {
			w, b, err := l.linear(n, H, H)
			if err != nil {
				return err
			}
			ly.qkvW = append(ly.qkvW, w...)
			ly.qkvB = append(ly.qkvB, b...)
		}
		if ly.oW, ly.oB, err = l.linear(names[3], H, H); err != nil {
			return err
		}
		if ly.ln1G, ly.ln1B, err = l.ln(names[4], H); err != nil {
			return err
		}
		if ly.iW, ly.iB, err = l.linear(names[5], I, H); err != nil {
			return err
		}
		if ly.o2W, ly.o2B, err = l.linear(names[6], H, I); err != nil {
			return err
		}
		if ly.ln2G, ly.ln2B, err = l.ln(names[7], H); err != nil {
			return err
		}
	}
	m.weightsID = hex.EncodeToString(l.h.Sum(nil))
	// The pooler is optional and not part of the identity of the hidden states.
	if c.ModelType == "bert" {
		if _, ok := l.find("pooler.dense.weight"); ok {
			if m.poolW, m.poolB, err = l.linear("pooler.dense", H, H); err != nil {
				return err
			}
		}
	}
	return nil
}

// WeightsHash identifies the weights that decide the hidden states: a SHA-256 over the
// architecture and every tensor used (canonical name, shape, float32 values), so the same weights
// read from model.safetensors or pytorch_model.bin hash the same.
func (m *Model) WeightsHash() string { return m.weightsID }

// Workers is the number of goroutines a forward pass uses.
func (m *Model) Workers() int { return max(m.cpu.Workers, 1) }

// Hidden is the width of the hidden states.
func (m *Model) Hidden() int { return m.Config.Hidden }

// MaxLen is the longest input in word pieces: min(512, max_position_embeddings).
func (m *Model) MaxLen() int { return m.Config.MaxLen() }

// Encode tokenizes text for the model: [CLS], word pieces truncated to MaxLen()-2 (head+tail
// when TruncateHead > 0), [SEP].
func (m *Model) Encode(text string) []int32 {
	if m.TruncateHead > 0 {
		return m.Tokenizer.EncodeHeadTail(text, m.MaxLen(), m.TruncateHead)
	}
	return m.Tokenizer.Encode(text, m.MaxLen())
}

// CheckLayers says whether layers is a usable Layers for the model: each index in
// -(Config.Layers+1)..Config.Layers, none twice (-1 and the last count as the same).
func (m *Model) CheckLayers(layers []int) error {
	L := m.Config.Layers
	seen := make(map[int]bool, len(layers))
	for _, i := range layers {
		if i < -(L+1) || i > L {
			return fmt.Errorf("bert: hidden state %d: the model has %d (0: the embeddings, 1..%d its layers; -1..-%d from the last)", i, L+1, L, L+1)
		}
		k := i
		if k < 0 {
			k += L + 1
		}
		if seen[k] {
			return fmt.Errorf("bert: hidden state %d is picked twice", k)
		}
		seen[k] = true
	}
	return nil
}

// LayersKey is the picked hidden states in canonical form ("4,5", sorted, non-negative), or ""
// when the output is the last hidden state (Layers nil or the last alone).
func (m *Model) LayersKey() string {
	picked := m.pickedLayers()
	if picked == nil {
		return ""
	}
	var parts []string
	for i, p := range picked {
		if p {
			parts = append(parts, strconv.Itoa(i))
		}
	}
	return strings.Join(parts, ",")
}

// CheckTruncateHead says whether head is a usable TruncateHead for the model: 0 (plain
// truncation) or 1..MaxLen()-3 (room for a tail of at least one word piece).
func (m *Model) CheckTruncateHead(head int) error {
	if head < 0 || head > 0 && head > m.MaxLen()-3 {
		return fmt.Errorf("bert: head+tail truncation: head %d word pieces, want 0 (off) or 1..%d (the model takes %d, with [CLS] and [SEP])",
			head, m.MaxLen()-3, m.MaxLen())
	}
	return nil
}
