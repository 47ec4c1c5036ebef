package nn

import (
	G "gorgonia.org/gorgonia"
)

// LSTMClassifier is the recipe's lstm model (torch_ref.py's LSTMClassifier): embedding ->
// dropout -> packed multi-layer (bi)LSTM with dropout between layers -> the last layer's final
// states [forward | backward] -> dropout -> linear.
type LSTMClassifier struct {
	cfg       Config
	Embedding *Embedding
	EmbDrop   *Dropout
	RNN       *LSTM
	Dropout   *Dropout
	FC        *Linear
}

func newLSTMClassifier(dev *CPU, cfg Config, rng *RNG) (*LSTMClassifier, error) {
	rnn, err := NewLSTM(dev, "rnn.", cfg.EmbedDim, cfg.Hidden, cfg.Layers, cfg.Bidirectional, cfg.Dropout)
	if err != nil {
		return nil, err
	}
	m := &LSTMClassifier{
		cfg:       cfg,
		Embedding: NewEmbedding("embedding.", cfg.VocabSize, cfg.EmbedDim, cfg.PadID),
		EmbDrop:   NewDropout("embedding-dropout", cfg.Dropout),
		RNN:       rnn,
		Dropout:   NewDropout("dropout", cfg.Dropout),
		FC:        NewLinear(dev, "fc.", rnn.OutputDim(), cfg.Outputs),
	}
	// The lookup's output and the recurrent op's input gradient are read by nothing else: the
	// embedding dropout works in place (two fewer T×B×E buffers).
	m.EmbDrop.InPlace = true
	m.Embedding.Init(rng)
	m.RNN.Init(rng)
	m.FC.Init(rng)
	return m, nil
}

// Config implements Model.
func (m *LSTMClassifier) Config() Config { return m.cfg }

// WordEmbedding implements WordModel.
func (m *LSTMClassifier) WordEmbedding() *Embedding { return m.Embedding }

// Params implements Model: embedding.weight, rnn.weight_ih_l0, ..., fc.weight, fc.bias.
func (m *LSTMClassifier) Params() []*Param {
	ps := m.Embedding.Params()
	ps = append(ps, m.RNN.Params()...)
	return append(ps, m.FC.Params()...)
}

// Forward implements Model. The batch must be sorted longest first.
func (m *LSTMClassifier) Forward(g *G.ExprGraph, in *Input, mode Mode, rng *RNG) (*G.Node, error) {
	if err := checkInput(m.cfg, in, true); err != nil {
		return nil, err
	}
	x, err := m.Embedding.Forward(g, in.IDs, in.B(), in.T, TimeMajor)
	if err != nil {
		return nil, err
	}
	if x, err = m.EmbDrop.Forward(x, mode, rng); err != nil {
		return nil, err
	}
	m.RNN.SetInputGrad(!m.Embedding.Weight.Frozen)
	h, err := m.RNN.Forward(x, in.Lengths, in.T, mode, rng)
	if err != nil {
		return nil, err
	}
	if h, err = m.Dropout.Forward(h, mode, rng); err != nil {
		return nil, err
	}
	return m.FC.Forward(h)
}
