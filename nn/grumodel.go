package nn

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GRUClassifier is the recipe's bigru head (torch_ref.py's GRUHead) over frozen encoder
// features: packed multi-layer (bi)GRU with dropout between layers -> the last layer's final
// states [forward | backward] -> dropout -> linear. The features get no gradient.
//
// With Config.Pool = PoolConcat (beyond the recipe) the linear layer reads [final states | mean
// over time | max over time] of the last layer's outputs, each over the true length.
type GRUClassifier struct {
	cfg     Config
	RNN     *GRU
	Pool    *SeqPool // nil unless Config.Pool is PoolConcat
	Dropout *Dropout
	FC      *Linear
}

func newGRUClassifier(dev *CPU, cfg Config, rng *RNG) (*GRUClassifier, error) {
	rnn, err := NewGRU(dev, "rnn.", cfg.InputDim, cfg.Hidden, cfg.Layers, cfg.Bidirectional, cfg.Dropout)
	if err != nil {
		return nil, err
	}
	rnn.SetInputGrad(false) // the features are frozen
	in := rnn.OutputDim()
	var pool *SeqPool
	if cfg.Pool == PoolConcat {
		pool = NewSeqPool("pool")
		in *= 3
	}
	m := &GRUClassifier{
		cfg:     cfg,
		RNN:     rnn,
		Pool:    pool,
		Dropout: NewDropout("dropout", cfg.Dropout),
		FC:      NewLinear(dev, "fc.", in, cfg.Outputs),
	}
	m.RNN.Init(rng)
	m.FC.Init(rng)
	return m, nil
}

// Config implements Model.
func (m *GRUClassifier) Config() Config { return m.cfg }

// Params implements Model: rnn.weight_ih_l0, ..., fc.weight, fc.bias.
func (m *GRUClassifier) Params() []*Param {
	return append(m.RNN.Params(), m.FC.Params()...)
}

// Forward implements Model: in.Feats is the time-major (T*B, InputDim) feature batch, sorted
// longest first.
func (m *GRUClassifier) Forward(g *G.ExprGraph, in *Input, mode Mode, rng *RNG) (*G.Node, error) {
	if err := checkInput(m.cfg, in, true); err != nil {
		return nil, err
	}
	rows := in.T * in.B()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(rows, in.Dim), G.WithName("features"),
		G.WithValue(tensor.New(tensor.WithShape(rows, in.Dim), tensor.WithBacking(in.Feats))))
	if m.Pool == nil {
		h, err := m.RNN.Forward(x, in.Lengths, in.T, mode, rng)
		if err != nil {
			return nil, err
		}
		return m.head(h, mode, rng)
	}
	h, seq, err := m.RNN.ForwardSequence(x, in.Lengths, in.T, mode, rng)
	if err != nil {
		return nil, err
	}
	pooled, err := m.Pool.Forward(seq, in.Lengths, in.T)
	if err != nil {
		return nil, err
	}
	if h, err = G.Concat(1, h, pooled); err != nil {
		return nil, err
	}
	return m.head(h, mode, rng)
}

// head is the classifier over the GRU's (pooled) features: dropout, then the linear layer.
func (m *GRUClassifier) head(h *G.Node, mode Mode, rng *RNG) (*G.Node, error) {
	h, err := m.Dropout.Forward(h, mode, rng)
	if err != nil {
		return nil, err
	}
	return m.FC.Forward(h)
}
