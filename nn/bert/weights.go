package bert

// Weights is a read-only view of a model's parameters in the layout its forward pass uses, for
// another executor of the same pass (the GPU's, package nn/gpu). The slices are the model's own:
// they must not be modified.
type Weights struct {
	// Word is [vocab, H], Pos [positions, H] (computed sines for a sinusoidal DistilBERT), Type0
	// the token type 0 row [H] (zeros for DistilBERT); EmbG and EmbB the embeddings' layer norm.
	Word, Pos, Type0, EmbG, EmbB []float32
	Layers                       []LayerWeights
}

// LayerWeights are one transformer layer's parameters; matrices are [out, in] as in
// torch.nn.Linear.
type LayerWeights struct {
	// QKVW is [3H, H]: the query, key and value projections' rows one after the other; QKVB [3H].
	QKVW, QKVB []float32
	// OW [H, H], OB: attention output; LN1G, LN1B: the layer norm after it.
	OW, OB, LN1G, LN1B []float32
	// IW [I, H], IB: the feed-forward's first product; O2W [H, I], O2B its second; LN2G, LN2B the
	// layer norm after it.
	IW, IB, O2W, O2B, LN2G, LN2B []float32
}

// Weights returns the model's parameters.
func (m *Model) Weights() Weights {
	w := Weights{Word: m.word, Pos: m.pos, Type0: m.typ0, EmbG: m.embG, EmbB: m.embB}
	for _, l := range m.layers {
		w.Layers = append(w.Layers, LayerWeights{QKVW: l.qkvW, QKVB: l.qkvB, OW: l.oW, OB: l.oB, LN1G: l.ln1G, LN1B: l.ln1B,
			IW: l.iW, IB: l.iB, O2W: l.o2W, O2B: l.o2B, LN2G: l.ln2G, LN2B: l.ln2B})
	}
	return w
}

// Params counts the checkpoint's parameters as transformers does: embeddings (every token type's
// row, though only type 0 is used), every layer, and the pooler when the checkpoint has one.
func (m *Model) Params() int {
	n := len(m.word) + len(m.pos) + m.Config.TypeVocabSize*m.Config.Hidden + len(m.embG) + len(m.embB) + len(m.poolW) + len(m.poolB)
	for _, l := range m.layers {
		for _, w := range [][]float32{l.qkvW, l.qkvB, l.oW, l.oB, l.ln1G, l.ln1B, l.iW, l.iB, l.o2W, l.o2B, l.ln2G, l.ln2B} {
			n += len(w)
		}
	}
	return n
}

// PickedLayers says which hidden states the output averages (see Model.Layers): index 0 is the
// embeddings' output, i layer i's. It is nil when the output is the last hidden state alone.
func (m *Model) PickedLayers() []bool { return m.pickedLayers() }

// CheckBatch checks a batch of model inputs as Forward does: each sequence non-empty and within
// the model's positions, every id inside the vocabulary, Layers valid.
func (m *Model) CheckBatch(seqs [][]int32) error {
	segs := make([]segment, len(seqs))
	var ids []int32
	for i, s := range seqs {
		segs[i] = segment{start: len(ids), n: len(s)}
		ids = append(ids, s...)
	}
	return m.check(ids, segs)
}
