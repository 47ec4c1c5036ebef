package gpu

import (
	"errors"
	"fmt"
	"math"

	"github.com/sentibench/sentibench/nn/bert"
)

// Encoder runs a frozen BERT-family encoder's forward pass (package nn/bert) on a device: the
// feature cache's build and the bigru's recomputed features on a GPU. It mirrors bert.Model's
// forward pass on a padded batch: the sequences of a call are laid out as B rows of T positions
// (T the longest; callers batch by length, so little is padding), every matrix product is one
// cuBLAS call over all B*T rows, attention is two strided-batched products per head over the B
// sequences with a softmax kernel that gives the padding keys no weight, and the layer norms,
// residuals and activations are kernels (kernels.cu, section "frozen encoder"). The weights stay
// on the device for the Encoder's life; activations come from the pool and go back after each
// call.
type Encoder struct {
	be     backend
	q      queue
	m      *bert.Model
	picked []bool
	act    int
	// device weights: one arena, each tensor at its offset
	arena                            uintptr
	word, pos, typ0, embG, embB      uintptr
	layers                           []encLayer
	ids                              []int32 // host: the padded batch's ids, then the lengths
	flat                             []float32
	H, I, heads, vocab, maxPositions int
}

type encLayer struct {
	qkvW, qkvB, oW, oB, ln1G, ln1B, iW, iB, o2W, o2B, ln2G, ln2B uintptr
}

// activations by kernels.cu's ffn_act kind
var actKinds = map[string]int{"gelu": 0, "gelu_new": 1, "gelu_pytorch_tanh": 1, "relu": 2}

// newEncoder copies m's weights to the backend. m's Layers are read now: set them before.
func newEncoder(be backend, m *bert.Model) (*Encoder, error) {
	if m == nil {
		return nil, errors.New("gpu: no encoder model")
	}
	sigs, err := kernelSignatures(kernelSource)
	if err != nil {
		return nil, err
	}
	c := m.Config
	act, ok := actKinds[c.Activation]
	if !ok {
		return nil, fmt.Errorf("gpu: encoder activation %q is not supported", c.Activation)
	}
	if err := m.CheckLayers(m.Layers); err != nil {
		return nil, fmt.Errorf("gpu: %w", err)
	}
	e := &Encoder{be: be, q: queue{be: be, sigs: sigs}, m: m, picked: m.PickedLayers(), act: act,
		H: c.Hidden, I: c.Intermediate, heads: c.Heads, vocab: c.VocabSize, maxPositions: c.MaxPositions}
	w := m.Weights()
	tensors := []struct {
		dst *uintptr
		src []float32
	}{{&e.word, w.Word}, {&e.pos, w.Pos}, {&e.typ0, w.Type0}, {&e.embG, w.EmbG}, {&e.embB, w.EmbB}}
	e.layers = make([]encLayer, len(w.Layers))
	for i, l := range w.Layers {
		d := &e.layers[i]
		tensors = append(tensors, []struct {
			dst *uintptr
			src []float32
		}{{&d.qkvW, l.QKVW}, {&d.qkvB, l.QKVB}, {&d.oW, l.OW}, {&d.oB, l.OB}, {&d.ln1G, l.LN1G}, {&d.ln1B, l.LN1B},
			{&d.iW, l.IW}, {&d.iB, l.IB}, {&d.o2W, l.O2W}, {&d.o2B, l.O2B}, {&d.ln2G, l.LN2G}, {&d.ln2B, l.LN2B}}...)
	}
	var size int64
	offs := make([]int64, len(tensors))
	for i, t := range tensors {
		offs[i] = size
		size += (int64(len(t.src)) + arenaAlign - 1) / arenaAlign * arenaAlign
	}
	done := be.enter()
	defer done()
	if e.arena, err = be.pool().alloc(4 * max(size, 1)); err != nil {
		return nil, fmt.Errorf("gpu: the encoder's weights (%d MiB): %w", 4*size>>20, err)
	}
	for i, t := range tensors {
		*t.dst = f32(e.arena, offs[i])
		if err := be.write(*t.dst, f32bytes(t.src)); err != nil {
			e.close()
			return nil, err
		}
	}
	return e, nil
}

// Hidden is the width of the features.
func (e *Encoder) Hidden() int { return e.H }

// Close frees the weights.
func (e *Encoder) Close() error {
	done := e.be.enter()
	defer done()
	return e.close()
}

func (e *Encoder) close() error {
	if e.arena == 0 {
		return nil
	}
	err := e.be.pool().free(e.arena)
	e.arena = 0
	return err
}

// ForwardInto is bert.Model.ForwardInto on the device: out[i] gets len(seqs[i]) rows of Hidden()
// features of sequence i (reused when its capacity suffices).
func (e *Encoder) ForwardInto(seqs [][]int32, out [][]float32) error {
	if len(out) != len(seqs) {
		return fmt.Errorf("gpu: %d outputs for %d sequences", len(out), len(seqs))
	}
	if e.arena == 0 {
		return errors.New("gpu: the encoder is closed")
	}
	if len(seqs) == 0 {
		return nil
	}
	if err := e.m.CheckBatch(seqs); err != nil {
		return fmt.Errorf("gpu: %w", err)
	}
	B, T := len(seqs), 0
	for _, s := range seqs {
		T = max(T, len(s))
	}
	rows := B * T
	// The padded ids (padding: id 0), then each sequence's length.
	e.ids = e.ids[:0]
	for _, s := range seqs {
		e.ids = append(e.ids, s...)
		for range T - len(s) {
			e.ids = append(e.ids, 0)
		}
	}
	for _, s := range seqs {
		e.ids = append(e.ids, int32(len(s)))
	}
	done := e.be.enter()
	defer done()
	q := &e.q
	q.err = nil
	defer q.release()
	idsDev := q.alloc(int64(len(e.ids)))
	q.fail(e.be.upload(idsDev, [][]byte{i32bytes(e.ids)}))
	y := e.forward(q, idsDev, f32(idsDev, int64(rows)), B, T)
	n := rows * e.H
	if cap(e.flat) < n {
		e.flat = make([]float32, n)
	}
	e.flat = e.flat[:n]
	q.download(part{src: y, dst: e.flat})
	if q.err != nil {
		return q.err
	}
	for i, s := range seqs {
		k := len(s) * e.H
		if cap(out[i]) < k {
			out[i] = make([]float32, k)
		}
		out[i] = out[i][:k]
		copy(out[i], e.flat[i*T*e.H:])
	}
	return nil
}

// forward queues the encoder over B padded sequences of T positions and returns the device
// address of its output [B*T, H]: the last hidden state, or the mean of the picked ones.
func (e *Encoder) forward(q *queue, ids, lens uintptr, B, T int) uintptr {
	c := e.m.Config
	H, I, heads := e.H, e.I, e.heads
	dh := H / heads
	rows := B * T
	R := int64(rows)
	eps := c.LayerNormEps
	rowGrid := int(min(R, maxBlocks))
	x, qkv, ctx := q.alloc(R*int64(H)), q.alloc(R*3*int64(H)), q.alloc(R*int64(H))
	x1, tmp, hid := q.alloc(R*int64(H)), q.alloc(R*int64(H)), q.alloc(R*int64(I))
	scores := q.alloc(int64(heads) * int64(B) * int64(T) * int64(T))
	q.launch("bert_embed", rowGrid, 1, x, e.word, e.pos, e.typ0, e.embG, e.embB, ids, rows, T, H, eps)
	var sum uintptr
	if e.picked != nil {
		sum = q.zeros(R * int64(H))
		e.addHidden(q, 0, sum, x, R*int64(H))
	}
	scale := float32(1 / math.Sqrt(float64(dh)))
	for li := range e.layers {
		l := &e.layers[li]
		e.linear(q, x, rows, H, l.qkvW, l.qkvB, 3*H, qkv)
		// Per head, over the B sequences: scores = scale Q K^T, softmax over the real keys, ctx = P V.
		TT := int64(T) * int64(T)
		for h := 0; h < heads; h++ {
			s := f32(scores, int64(h)*int64(B)*TT)
			q.gemm(false, true, T, T, dh, scale, f32(qkv, int64(h*dh)), 3*H, int64(T*3*H), f32(qkv, int64(H+h*dh)), 3*H, int64(T*3*H),
				0, s, T, TT, B)
		}
		q.launch("attn_softmax", int(min(int64(heads)*R, maxBlocks)), 1, scores, lens, int64(heads)*R, T, B)
		for h := 0; h < heads; h++ {
			s := f32(scores, int64(h)*int64(B)*TT)
			q.gemm(false, false, T, dh, T, 1, s, T, TT, f32(qkv, int64(2*H+h*dh)), 3*H, int64(T*3*H),
				0, f32(ctx, int64(h*dh)), H, int64(T*H), B)
		}
		// Output projection, residual, layer norm; feed-forward, residual, layer norm.
		e.linear(q, ctx, rows, H, l.oW, l.oB, H, tmp)
		q.launch("residual_norm", rowGrid, 1, x1, tmp, x, l.ln1G, l.ln1B, rows, H, eps)
		e.linear(q, x1, rows, H, l.iW, l.iB, I, hid)
		q.launch("ffn_act", gridFor(R*int64(I)), 1, hid, R*int64(I), e.act)
		e.linear(q, hid, rows, I, l.o2W, l.o2B, H, tmp)
		q.launch("residual_norm", rowGrid, 1, x, tmp, x1, l.ln2G, l.ln2B, rows, H, eps)
		if sum != 0 {
			e.addHidden(q, li+1, sum, x, R*int64(H))
		}
	}
	if sum == 0 {
		return x
	}
	n := 0
	for _, p := range e.picked {
		if p {
			n++
		}
	}
	inv := 1 / float32(n)
	q.launch("axpby", gridFor(R*int64(H)), 1, sum, sum, R*int64(H), inv, float32(0))
	return sum
}

// addHidden adds hidden state i (in x) to sum when it is picked.
func (e *Encoder) addHidden(q *queue, i int, sum, x uintptr, n int64) {
	if e.picked[i] {
		q.launch("axpby", gridFor(n), 1, sum, x, n, float32(1), float32(1))
	}
}

// linear queues y [n, out] = x [n, in] W^T + bias (W [out, in]).
func (e *Encoder) linear(q *queue, x uintptr, n, in int, w, bias uintptr, out int, y uintptr) {
	q.launch("bias_rows", gridFor(int64(n)*int64(out)), 1, y, bias, int64(n), out)
	q.gemm(false, true, n, out, in, 1, x, in, 0, w, in, 0, 1, y, out, 0, 1)
}
