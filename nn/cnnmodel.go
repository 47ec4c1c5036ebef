package nn

import (
	G "gorgonia.org/gorgonia"
)

// CNNClassifier is the recipe's cnn model (torch_ref.py's CNNClassifier): embedding ->
// convolutions of each width -> ReLU -> max over time -> concatenation -> dropout -> linear.
type CNNClassifier struct {
	cfg       Config
	Embedding *Embedding
	Convs     *TextCNN
	Dropout   *Dropout
	FC        *Linear

	padded []int32 // the batch padded to Convs.MinLen when it is shorter
}

func newCNNClassifier(dev *CPU, cfg Config, rng *RNG) *CNNClassifier {
	m := &CNNClassifier{
		cfg:       cfg,
		Embedding: NewEmbedding("embedding.", cfg.VocabSize, cfg.EmbedDim, cfg.PadID),
		Convs:     NewTextCNN(dev, "convs.", cfg.EmbedDim, cfg.Filters, cfg.Widths),
		Dropout:   NewDropout("dropout", cfg.Dropout),
	}
	m.FC = NewLinear(dev, "fc.", m.Convs.OutputDim(), cfg.Outputs)
	m.Embedding.Init(rng)
	m.Convs.Init(rng)
	m.FC.Init(rng)
	return m
}

// Config implements Model.
func (m *CNNClassifier) Config() Config { return m.cfg }

// WordEmbedding implements WordModel.
func (m *CNNClassifier) WordEmbedding() *Embedding { return m.Embedding }

// Params implements Model: embedding.weight, convs.0.weight, convs.0.bias, ..., fc.weight,
// fc.bias.
func (m *CNNClassifier) Params() []*Param {
	ps := m.Embedding.Params()
	ps = append(ps, m.Convs.Params()...)
	return append(ps, m.FC.Params()...)
}

// Forward implements Model.
func (m *CNNClassifier) Forward(g *G.ExprGraph, in *Input, mode Mode, rng *RNG) (*G.Node, error) {
	if err := checkInput(m.cfg, in, false); err != nil {
		return nil, err
	}
	B, T, ids := in.B(), in.T, in.IDs
	if T < m.Convs.MinLen { // pad with <pad> to the widest filter, as torch_ref's WordBatches
		pad := int32(max(m.cfg.PadID, 0))
		m.padded = resize(&m.padded, B*m.Convs.MinLen)
		for b := 0; b < B; b++ {
			row := m.padded[b*m.Convs.MinLen : (b+1)*m.Convs.MinLen]
			n := copy(row, ids[b*T:(b+1)*T])
			for i := n; i < len(row); i++ {
				row[i] = pad
			}
		}
		ids, T = m.padded, m.Convs.MinLen
	}
	x, err := m.Embedding.Forward(g, ids, B, T, BatchMajor)
	if err != nil {
		return nil, err
	}
	h, err := m.Convs.Forward(x, in.Lengths, T, InputGrad(!m.Embedding.Weight.Frozen))
	if err != nil {
		return nil, err
	}
	if h, err = m.Dropout.Forward(h, mode, rng); err != nil {
		return nil, err
	}
	return m.FC.Forward(h)
}
