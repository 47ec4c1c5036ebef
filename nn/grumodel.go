package nn

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GRUClassifier is the recipe's bigru head (torch_ref.py's GRUHead) over frozen encoder
// features: packed multi-layer (bi)GRU with dropout between layers -> the last layer's final
// states [forward | backward] -> dropout -> linear. The features get no gradient.
type GRUClassifier struct {
	cfg     Config
	RNN     *GRU
	Dropout *Dropout
	FC      *Linear
}

func newGRUClassifier(dev *CPU, cfg Config, rng *RNG) (*GRUClassifier, error) {
	rnn, err := NewGRU(dev, "rnn.", cfg.InputDim, cfg.Hidden, cfg.Layers, cfg.Bidirectional, cfg.Dropout, false)
	if err != nil {
		return nil, err
	}
	m := &GRUClassifier{
		cfg:     cfg,
		RNN:     rnn,
		Dropout: NewDropout("dropout", cfg.Dropout),
		FC:      NewLinear(dev, "fc.", rnn.OutputDim(), cfg.Outputs),
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
	h, _, err := m.RNN.Forward(x, in.Lengths, in.T, mode, rng, false)
	if err != nil {
		return nil, err
	}
	if h, err = m.Dropout.Forward(h, mode, rng); err != nil {
		return nil, err
	}
	return m.FC.Forward(h)
}
