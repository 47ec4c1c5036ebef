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

// Config describes a model completely: with it, NewModel builds the same architecture (with
// fresh weights). It is saved as JSON next to every checkpoint.
type Config struct {
	// Kind is "lstm", "cnn" or "bigru".
	Kind string `json:"model"`
	// VocabSize and PadID describe the vocabulary of word models (lstm, cnn).
	VocabSize int `json:"vocab_size,omitempty"`
	PadID     int `json:"pad_id"`
	// EmbedDim is the width of the word embedding (word models).
	EmbedDim int `json:"embedding_dim,omitempty"`
	// InputDim is the width of the input features (bigru: the encoder's hidden size).
	InputDim int `json:"input_dim,omitempty"`
	// Hidden, Layers and Bidirectional shape the recurrent layers (lstm, bigru).
	Hidden        int  `json:"hidden_dim,omitempty"`
	Layers        int  `json:"layers,omitempty"`
	Bidirectional bool `json:"bidirectional,omitempty"`
	// Filters and Widths shape the convolutions (cnn).
	Filters int   `json:"filters,omitempty"`
	Widths  []int `json:"widths,omitempty"`
	// Pool is what the bigru's classifier reads of the recurrent output: PoolLast (or ""), the
	// recipe, or PoolConcat.
	Pool string `json:"pool,omitempty"`
	// Dropout is the probability of every dropout of the model.
	Dropout float64 `json:"dropout"`
	// Outputs is the number of logits: 1 for binary classification.
	Outputs int `json:"outputs"`
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
