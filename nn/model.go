package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Param is one tensor of a model's weights, named and shaped as PyTorch names and shapes it
// (for example "rnn.weight_ih_l0" with shape [1024 100]).
type Param struct {
	Name  string
	Shape []int
	// Value holds the weights; its backing array is Data(). It is bound to a graph node each
	// step, and the optimiser updates it in place.
	Value *tensor.Dense
	// Grad is the gradient of the loss with respect to the weights from the last backward pass,
	// the same length as Data(). It is nil for a frozen parameter.
	Grad []float32
	// Frozen parameters get no gradient and are never updated (a frozen embedding, say).
	Frozen bool
}

// NewParam returns a zero-filled trainable parameter.
func NewParam(name string, shape ...int) *Param {
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]float32, n)
	return &Param{
		Name:  name,
		Shape: append([]int(nil), shape...),
		Value: tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data)),
		Grad:  make([]float32, n),
	}
}

// Data returns the weights as one flat slice in row-major order.
func (p *Param) Data() []float32 { return p.Value.Data().([]float32) }

// Size is the number of weights.
func (p *Param) Size() int { return p.Value.Shape().TotalSize() }

// Freeze marks the parameter frozen and drops its gradient.
func (p *Param) Freeze() { p.Frozen, p.Grad = true, nil }

// String describes the parameter, e.g. "rnn.weight_ih_l0 [1024 100]".
func (p *Param) String() string { return fmt.Sprintf("%s %v", p.Name, p.Shape) }

// Input is one batch as a model sees it. The sequences are sorted by true length, longest first
// (as PyTorch's pack_padded_sequence with enforce_sorted=True wants them); every length is >= 1.
type Input struct {
	// Lengths holds each sequence's true length, descending.
	Lengths []int
	// T is the padded length (at least Lengths[0]).
	T int
	// IDs holds B*T token ids for word models, row b (ids[b*T:(b+1)*T]) being sequence b,
	// padded with the model's <pad> id.
	IDs []int32
	// Feats holds T*B*Dim features for feature models (the bigru head), time-major: the
	// features of sequence b at step t start at (t*B+b)*Dim. Padding positions are zero.
	Feats []float32
	// Dim is the feature width of Feats.
	Dim int
}

// B is the batch size.
func (in *Input) B() int { return len(in.Lengths) }

// Tokens is the number of real (non-padding) positions in the batch.
func (in *Input) Tokens() int {
	n := 0
	for _, l := range in.Lengths {
		n += l
	}
	return n
}

// Mode says whether a forward pass is for training (dropout on, gradients wanted) or for
// evaluation (dropout off, no backward pass).
type Mode int

const (
	// Eval is inference: dropout off, no gradients.
	Eval Mode = iota
	// Train is a training pass: dropout on, the backward pass follows.
	Train
)

// Model is a classifier that adds its computation for one batch to a Gorgonia graph.
type Model interface {
	// Config returns the model's architecture.
	Config() Config
	// Params returns every parameter, frozen ones included, in a fixed order (PyTorch's
	// state_dict order).
	Params() []*Param
	// Forward adds the model to g for the batch in and returns the logits node, shape
	// (B, Outputs). rng draws the dropout masks in Train mode.
	Forward(g *G.ExprGraph, in *Input, mode Mode, rng *RNG) (*G.Node, error)
}

// NewModel builds the model cfg describes, its weights initialised as PyTorch initialises each
// layer, from rng.
func NewModel(dev *CPU, cfg Config, rng *RNG) (Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dev == nil || dev.BLAS == nil {
		return nil, fmt.Errorf("nn: NewModel needs a device")
	}
	if rng == nil {
		return nil, fmt.Errorf("nn: NewModel needs a random generator for the initial weights")
	}
	switch cfg.Kind {
	case KindCNN:
		return newCNNClassifier(dev, cfg, rng), nil
	case KindLSTM:
		m, err := newLSTMClassifier(dev, cfg, rng)
		if err != nil {
			return nil, err
		}
		return m, nil
	case KindBiGRU:
		m, err := newGRUClassifier(dev, cfg, rng)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, fmt.Errorf("nn: unknown model %q", cfg.Kind)
}

// WordModel is a model over token ids with a word embedding (lstm, cnn): pretrained vectors
// and freezing go through its Embedding.
type WordModel interface {
	Model
	WordEmbedding() *Embedding
}

// checkInput checks a batch against a model: lengths in [1, T], descending when sorted is set
// (packed recurrent layers need it), and the ids (word models) or features (feature models)
// of the right size.
func checkInput(cfg Config, in *Input, sorted bool) error {
	if in == nil || len(in.Lengths) == 0 {
		return fmt.Errorf("nn: %s model: empty batch", cfg.Kind)
	}
	B := len(in.Lengths)
	for b, l := range in.Lengths {
		if l < 1 || l > in.T {
			return fmt.Errorf("nn: %s model: sequence %d has length %d, outside [1, T=%d]", cfg.Kind, b, l, in.T)
		}
		if sorted && b > 0 && l > in.Lengths[b-1] {
			return fmt.Errorf("nn: %s model: lengths must be sorted longest first (sequence %d: %d after %d)", cfg.Kind, b, l, in.Lengths[b-1])
		}
	}
	if cfg.Kind == KindBiGRU {
		if in.Dim != cfg.InputDim || len(in.Feats) != in.T*B*in.Dim {
			return fmt.Errorf("nn: %s model: features are %d values of width %d, want %d x %d x %d", cfg.Kind, len(in.Feats), in.Dim, in.T, B, cfg.InputDim)
		}
		return nil
	}
	if len(in.IDs) != B*in.T {
		return fmt.Errorf("nn: %s model: %d ids for a batch of %d x %d", cfg.Kind, len(in.IDs), B, in.T)
	}
	return nil
}
