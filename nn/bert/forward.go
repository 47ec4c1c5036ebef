package bert

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	gblas "gonum.org/v1/gonum/blas"
)

// segment is one sequence of a packed batch: rows [start, start+n) of the activations.
type segment struct {
	start, n int
	// mask is nil when every position is a real token; otherwise 1 marks a position that is
	// attended to and 0 a padding position (ForwardPadded).
	mask []int32
}

// workspace holds the activations of one forward pass; it is reused across calls.
type workspace struct {
	pos                       []int32 // position of each row within its sequence
	x, qkv, ctx, x1, tmp, hid []float32
	sum                       []float32   // the sum of the hidden states Model.Layers picks
	scores                    [][]float32 // one L×L buffer per worker
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// Forward returns the last hidden state of each sequence: out[i] holds len(seqs[i]) rows of
// Hidden() values, row-major. Each sequence is a full model input ([CLS] ... [SEP], at most
// MaxLen() ids; see Encode). The sequences are packed without padding, so a batch of mixed
// lengths wastes no work, and every sequence's result is what a padded batch with an attention
// mask gives at its real positions (up to float rounding).
func (m *Model) Forward(seqs [][]int32) ([][]float32, error) {
	out := make([][]float32, len(seqs))
	return out, m.ForwardInto(seqs, out)
}

// ForwardInto is Forward writing into out (len(out) == len(seqs)); out[i] is reused when its
// capacity suffices.
func (m *Model) ForwardInto(seqs [][]int32, out [][]float32) error {
	if len(out) != len(seqs) {
		return fmt.Errorf("bert: %d outputs for %d sequences", len(out), len(seqs))
	}
	segs := make([]segment, len(seqs))
	n := 0
	for i, s := range seqs {
		segs[i] = segment{start: n, n: len(s)}
		n += len(s)
	}
	ids := make([]int32, 0, n)
	for _, s := range seqs {
		ids = append(ids, s...)
	}
	if err := m.check(ids, segs); err != nil {
		return err
	}
	ws, _ := m.work.Get().(*workspace)
	if ws == nil {
		ws = &workspace{}
	}
	defer m.work.Put(ws)
	x := m.run(ws, ids, segs)
	H := m.Config.Hidden
	for i, s := range segs {
		out[i] = grow(out[i], s.n*H)
		copy(out[i], x[s.start*H:(s.start+s.n)*H])
	}
	return nil
}

// ForwardPadded runs a padded batch as transformers does: ids and mask are row-major [B, T]
// (mask 1 = real token, 0 = padding). It returns the last hidden state at every position,
// [B, T, Hidden]; rows at padding positions are what transformers computes there too (they
// attend to the real tokens only) and carry no meaning.
func (m *Model) ForwardPadded(ids, mask []int32, B, T int) ([]float32, error) {
	if B < 0 || T < 0 || len(ids) != B*T || len(mask) != B*T {
		return nil, fmt.Errorf("bert: padded batch of %d ids and %d mask values is not %d x %d", len(ids), len(mask), B, T)
	}
	segs := make([]segment, B)
	for b := range segs {
		segs[b] = segment{start: b * T, n: T, mask: mask[b*T : (b+1)*T]}
	}
	if err := m.check(ids, segs); err != nil {
		return nil, err
	}
	ws := &workspace{}
	x := m.run(ws, ids, segs)
	return x[:B*T*m.Config.Hidden], nil
}

func (m *Model) check(ids []int32, segs []segment) error {
	if err := m.CheckLayers(m.Layers); err != nil {
		return err
	}
	for i, s := range segs {
		if s.n == 0 {
			return fmt.Errorf("bert: sequence %d is empty", i)
		}
		if s.n > m.Config.MaxPositions {
			return fmt.Errorf("bert: sequence %d has %d word pieces, more than the model's %d positions", i, s.n, m.Config.MaxPositions)
		}
	}
	for i, id := range ids {
		if id < 0 || int(id) >= m.Config.VocabSize {
			return fmt.Errorf("bert: id %d at position %d is outside the vocabulary of %d", id, i, m.Config.VocabSize)
		}
	}
	return nil
}

// parallelRows splits [0, n) into at most workers contiguous ranges of at least minRows rows
// and runs fn on each in its own goroutine.
func parallelRows(workers, n, minRows int, fn func(lo, hi int)) {
	chunks := min(workers, n/max(minRows, 1))
	if chunks <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for c := 0; c < chunks; c++ {
		lo, hi := c*n/chunks, (c+1)*n/chunks
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// minRows is the fewest rows worth a goroutine of their own.
const minRows = 16

// run computes the encoder over packed rows and returns its output, [rows, H]: the last hidden
// state, or the mean of the hidden states m.Layers picks.
func (m *Model) run(ws *workspace, ids []int32, segs []segment) []float32 {
	c := m.Config
	H, I, N := c.Hidden, c.Intermediate, len(ids)
	workers := max(m.cpu.Workers, 1)
	maxL := 0
	for _, s := range segs {
		maxL = max(maxL, s.n)
	}
	ws.x = grow(ws.x, N*H)
	ws.qkv = grow(ws.qkv, N*3*H)
	ws.ctx = grow(ws.ctx, N*H)
	ws.x1 = grow(ws.x1, N*H)
	ws.tmp = grow(ws.tmp, N*H)
	ws.hid = grow(ws.hid, N*I)
	if cap(ws.pos) < N {
		ws.pos = make([]int32, N)
	}
	ws.pos = ws.pos[:N]
	for _, s := range segs {
		for t := 0; t < s.n; t++ {
			ws.pos[s.start+t] = int32(t)
		}
	}
	for len(ws.scores) < workers {
		ws.scores = append(ws.scores, nil)
	}
	for w := range ws.scores[:workers] {
		ws.scores[w] = grow(ws.scores[w], maxL*maxL)
	}

	// Embeddings: (word + token type 0) + position, then layer norm, as transformers adds them.
	parallelRows(workers, N, minRows*4, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := ws.x[r*H : (r+1)*H]
			w := m.word[int(ids[r])*H:]
			p := m.pos[int(ws.pos[r])*H:]
			for j := range row {
				row[j] = (w[j] + m.typ0[j]) + p[j]
			}
		}
		layerNorm(ws.x[lo*H:hi*H], H, m.embG, m.embB, c.LayerNormEps)
	})
	picked := m.pickedLayers()
	if picked != nil {
		ws.sum = grow(ws.sum, N*H)
		clear(ws.sum)
		ws.addHidden(0, picked, N*H)
	}

	b := m.cpu.BLAS
	for li := range m.layers {
		ly := &m.layers[li]
		// Query, key and value for every row: [N, 3H] = x [N, H] · Wqkv^T + b.
		parallelRows(workers, N, minRows, func(lo, hi int) {
			linear(b, ws.x[lo*H:hi*H], hi-lo, H, ly.qkvW, ly.qkvB, 3*H, ws.qkv[lo*3*H:hi*3*H])
		})
		m.attention(ws, segs, workers)
		// Output projection, residual, layer norm; feed-forward, residual, layer norm.
		parallelRows(workers, N, minRows, func(lo, hi int) {
			n := hi - lo
			x, x1, tmp, hid := ws.x[lo*H:hi*H], ws.x1[lo*H:hi*H], ws.tmp[lo*H:hi*H], ws.hid[lo*I:hi*I]
			linear(b, ws.ctx[lo*H:hi*H], n, H, ly.oW, ly.oB, H, tmp)
			for j := range x1 {
				x1[j] = tmp[j] + x[j]
			}
			layerNorm(x1, H, ly.ln1G, ly.ln1B, c.LayerNormEps)
			linear(b, x1, n, H, ly.iW, ly.iB, I, hid)
			m.act(hid)
			linear(b, hid, n, I, ly.o2W, ly.o2B, H, tmp)
			for j := range x {
				x[j] = tmp[j] + x1[j]
			}
			layerNorm(x, H, ly.ln2G, ly.ln2B, c.LayerNormEps)
		})
		if picked != nil {
			ws.addHidden(li+1, picked, N*H)
		}
	}
	if picked == nil {
		return ws.x[:N*H]
	}
	n := 0
	for _, p := range picked {
		if p {
			n++
		}
	}
	inv := 1 / float32(n)
	for j := range ws.sum {
		ws.sum[j] *= inv
	}
	return ws.sum
}

// addHidden adds hidden state number i (0: the embeddings' output), now in ws.x, to ws.sum when
// picked holds it.
func (ws *workspace) addHidden(i int, picked []bool, n int) {
	if !picked[i] {
		return
	}
	for j, v := range ws.x[:n] {
		ws.sum[j] += v
	}
}

// pickedLayers marks the hidden states m.Layers averages (index 0: the embeddings' output, i:
// layer i's), or returns nil when the output is the last hidden state alone.
func (m *Model) pickedLayers() []bool {
	L := m.Config.Layers
	if len(m.Layers) == 0 || len(m.Layers) == 1 && (m.Layers[0] == L || m.Layers[0] == -1) {
		return nil
	}
	picked := make([]bool, L+1)
	for _, i := range m.Layers {
		if i < 0 {
			i += L + 1
		}
		picked[i] = true
	}
	return picked
}

// linear computes y [n, out] = x [n, in] · W^T + bias, W being [out, in] (torch.nn.Linear).
func linear(b gblas.Float32, x []float32, n, in int, w, bias []float32, out int, y []float32) {
	if n == 0 {
		return
	}
	b.Sgemm(gblas.NoTrans, gblas.Trans, n, out, in, 1, x, in, w, in, 0, y, out)
	for r := 0; r < n; r++ {
		row := y[r*out : (r+1)*out]
		for j, v := range bias {
			row[j] += v
		}
	}
}

// maskValue is what transformers adds to the score of a padding key: the float32 minimum.
const maskValue = -math.MaxFloat32

// attention computes softmax(Q K^T / √d + mask) V for every (sequence, head) pair, spread over
// the workers, into ws.ctx.
func (m *Model) attention(ws *workspace, segs []segment, workers int) {
	c := m.Config
	H, dh, heads := c.Hidden, c.HeadDim(), c.Heads
	scale := float32(1 / math.Sqrt(float64(dh)))
	tasks := len(segs) * heads
	var next atomic.Int64
	work := func(w int) {
		for {
			t := int(next.Add(1) - 1)
			if t >= tasks {
				return
			}
			s, h := segs[t/heads], t%heads
			L := s.n
			q := ws.qkv[s.start*3*H+h*dh:]
			k := ws.qkv[s.start*3*H+H+h*dh:]
			v := ws.qkv[s.start*3*H+2*H+h*dh:]
			sc := ws.scores[w][:L*L]
			m.cpu.BLAS.Sgemm(gblas.NoTrans, gblas.Trans, L, L, dh, scale, q, 3*H, k, 3*H, 0, sc, L)
			if s.mask != nil {
				for j, keep := range s.mask {
					if keep == 0 {
						for i := 0; i < L; i++ {
							sc[i*L+j] += maskValue
						}
					}
				}
			}
			softmaxRows(sc, L)
			m.cpu.BLAS.Sgemm(gblas.NoTrans, gblas.NoTrans, L, dh, L, 1, sc, L, v, 3*H, 0, ws.ctx[s.start*H+h*dh:], H)
		}
	}
	if workers <= 1 || tasks == 1 {
		work(0)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < min(workers, tasks); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(w)
		}()
	}
	wg.Wait()
}

// Pool is BertModel's pooler: tanh(W h + b) of a sequence's first ([CLS]) hidden state. It
// fails for checkpoints without a pooler (DistilBERT, or saved without one).
func (m *Model) Pool(cls []float32) ([]float32, error) {
	H := m.Config.Hidden
	if m.poolW == nil {
		return nil, fmt.Errorf("bert: %s has no pooler weights", m.WeightsFile)
	}
	if len(cls) < H {
		return nil, fmt.Errorf("bert: pooler input of %d values, want %d", len(cls), H)
	}
	out := make([]float32, H)
	linear(m.cpu.BLAS, cls[:H], 1, H, m.poolW, m.poolB, H, out)
	for i, v := range out {
		out[i] = float32(math.Tanh(float64(v)))
	}
	return out, nil
}
