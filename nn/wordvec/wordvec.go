// Package wordvec trains word vectors on unlabelled text with word2vec's skip-gram and negative
// sampling (Mikolov et al., 2013), the way the reference C implementation does it: a window
// shrunk at random around each word, frequent words subsampled, negatives drawn from the
// unigram distribution raised to 3/4, and a learning rate that falls linearly to nothing.
//
// The vectors initialise the word models' embedding (train.Config.GloVe reads the text file
// that Vectors.Save writes). Trained on IMDB's 50,000 unlabelled reviews and the train split,
// they give the lstm and cnn word vectors of the reviews' own language, without any data
// from outside and without the test reviews.
//
// With one thread the result is a function of the texts and the seed, bit for bit. More
// threads update the shared vectors without locks (Hogwild, as the C code does): faster,
// but not reproducible.
package wordvec

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/atomicfile"
	"github.com/sentibench/sentibench/internal/progress"
)

// Config says how to train. The zero value of a field takes the default named beside it
// (word2vec's own defaults for skip-gram).
type Config struct {
	// Dim is the size of a vector (default 100, the recipe's embedding size).
	Dim int
	// Window is the largest distance between a word and a context word (default 5); each
	// word draws its own window between 1 and Window.
	Window int
	// Negative is how many noise words each (word, context) pair is contrasted with
	// (default 5).
	Negative int
	// MinCount drops the words seen fewer times (default 5).
	MinCount int
	// Sample is the subsampling threshold of frequent words (default 1e-3; negative: none).
	Sample float64
	// Epochs is how many passes are made over the texts (default 5).
	Epochs int
	// LR is the starting learning rate (default 0.025); it falls linearly to LR/10,000.
	LR float64
	// Seed seeds the initial vectors, the windows, the subsampling, the negatives and each
	// epoch's order of the texts.
	Seed uint64
	// Threads is how many goroutines train (default 1: reproducible; more: Hogwild).
	Threads int
	// Progress, when not nil, receives a progress report with the time left; ProgressMode
	// picks its form.
	Progress     io.Writer
	ProgressMode progress.Mode
}

// withDefaults fills the zero fields and checks the others.
func (c Config) withDefaults() (Config, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Dim, 100)
	def(&c.Window, 5)
	def(&c.Negative, 5)
	def(&c.MinCount, 5)
	def(&c.Epochs, 5)
	def(&c.Threads, 1)
	if c.Sample == 0 {
		c.Sample = 1e-3
	}
	if c.LR == 0 {
		c.LR = 0.025
	}
	switch {
	case c.Dim < 0 || c.Window < 0 || c.Negative < 0 || c.MinCount < 0 || c.Epochs < 0 || c.Threads < 0:
		return c, fmt.Errorf("wordvec: dim %d, window %d, negative %d, min count %d, epochs %d, threads %d: none may be negative",
			c.Dim, c.Window, c.Negative, c.MinCount, c.Epochs, c.Threads)
	case c.LR < 0 || math.IsNaN(c.LR) || math.IsInf(c.LR, 0):
		return c, fmt.Errorf("wordvec: learning rate %g: must be positive", c.LR)
	case math.IsNaN(c.Sample):
		return c, errors.New("wordvec: the subsampling threshold is NaN")
	}
	return c, nil
}

// Vectors are trained word vectors.
type Vectors struct {
	// Words are the words, most frequent first (ties in byte-wise order); Counts their counts
	// in the training texts.
	Words  []string
	Counts []int64
	// Dim is the size of a vector; Data holds the vectors row by row (word i at
	// Data[i*Dim:(i+1)*Dim]).
	Dim  int
	Data []float32
}

// Vector returns the vector of word i.
func (v *Vectors) Vector(i int) []float32 { return v.Data[i*v.Dim : (i+1)*v.Dim] }

// Index returns the index of word w, or -1.
func (v *Vectors) Index(w string) int { return slices.Index(v.Words, w) }

// WriteText writes the vectors in word2vec's text format: a line "count dim", then one line per
// word: the word and its numbers, separated by single spaces. GloVe readers (nn.Embedding's
// LoadGloVe among them) skip the first line.
func (v *Vectors) WriteText(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	fmt.Fprintf(bw, "%d %d\n", len(v.Words), v.Dim)
	buf := make([]byte, 0, 16*v.Dim+64)
	for i, word := range v.Words {
		buf = append(buf[:0], word...)
		for _, x := range v.Vector(i) {
			buf = append(buf, ' ')
			buf = strconv.AppendFloat(buf, float64(x), 'g', -1, 32)
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Save writes the vectors to path in word2vec's text format (see WriteText), atomically: a
// crash leaves the old file or the new one, never a part.
func (v *Vectors) Save(path string) error {
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("wordvec: %w", err)
	}
	if err := v.WriteText(f); err != nil {
		f.Abort()
		return fmt.Errorf("wordvec: writing %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("wordvec: %w", err)
	}
	return nil
}

// Stats say what Train saw.
type Stats struct {
	// Texts and Tokens are the training texts and their tokens; Kept the tokens of words
	// that passed MinCount.
	Texts         int
	Tokens, Kept  int64
	Words         int
	Dropped       int // distinct words under MinCount
	TrainedTokens int64
}

// sigmoid table, as word2vec.c: maxExp bounds the argument, expTable samples it.
const (
	maxExp       = 6
	expTableSize = 1000
	negTableSize = 10_000_000
)

// Train learns vectors for the words of the texts texts of toks (indices into toks.Seqs), as
// the package comment says. It returns an error when no word reaches MinCount, and ctx.Err()
// when the context ends first.
func Train(ctx context.Context, toks *data.Tokens, texts []int, cfg Config) (*Vectors, Stats, error) {
	var st Stats
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, st, err
	}
	st.Texts = len(texts)

	// The vocabulary: words of at least MinCount, most frequent first.
	counts := toks.Counts(texts)
	ids := make([]int32, 0, len(counts))
	for id, n := range counts {
		st.Tokens += n
		if n == 0 {
			continue
		}
		if n < int64(cfg.MinCount) {
			st.Dropped++
			continue
		}
		ids = append(ids, int32(id))
	}
	if len(ids) == 0 {
		return nil, st, fmt.Errorf("wordvec: no word occurs %d times or more in the %d texts (%d tokens)", cfg.MinCount, len(texts), st.Tokens)
	}
	slices.SortFunc(ids, func(a, b int32) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(toks.Types[a], toks.Types[b])
	})
	V, D := len(ids), cfg.Dim
	vec := &Vectors{Words: make([]string, V), Counts: make([]int64, V), Dim: D}
	remap := make([]int32, len(counts))
	for i := range remap {
		remap[i] = -1
	}
	for w, id := range ids {
		vec.Words[w] = toks.Types[id]
		vec.Counts[w] = counts[id]
		remap[id] = int32(w)
		st.Kept += counts[id]
	}
	st.Words = V

	// The texts as word indices (words under MinCount left out, as word2vec does).
	seqs := make([][]int32, len(texts))
	for k, t := range texts {
		s := make([]int32, 0, len(toks.Seqs[t]))
		for _, id := range toks.Seqs[t] {
			if w := remap[id]; w >= 0 {
				s = append(s, w)
			}
		}
		seqs[k] = s
	}

	// Subsampling: word w is kept with probability keep[w] (word2vec.c's formula).
	keep := make([]float32, V)
	for w, n := range vec.Counts {
		keep[w] = 1
		if cfg.Sample > 0 {
			thr := cfg.Sample * float64(st.Kept)
			p := (math.Sqrt(float64(n)/thr) + 1) * thr / float64(n)
			keep[w] = float32(min(p, 1))
		}
	}

	// Noise words are drawn from counts^0.75.
	negTable := unigramTable(vec.Counts, min(negTableSize, max(1000, 100*V)))

	expTable := make([]float32, expTableSize)
	for i := range expTable {
		e := math.Exp((float64(i)/expTableSize*2 - 1) * maxExp)
		expTable[i] = float32(e / (e + 1))
	}

	// word2vec's initialisation: input vectors uniform in ±0.5/Dim, output vectors zero.
	rng := data.NewSplitMix64(cfg.Seed)
	vec.Data = make([]float32, V*D)
	for i := range vec.Data {
		vec.Data[i] = (float32(rng.Next()>>40)/(1<<24) - 0.5) / float32(D)
	}
	out := make([]float32, V*D)

	total := int64(cfg.Epochs) * st.Kept
	rep := progress.New(cfg.Progress, progress.Options{Label: "wordvec", Unit: "words", Total: total, Mode: cfg.ProgressMode})
	rep.Start(0)
	var done atomic.Int64 // tokens processed, for the learning rate and the progress
	order := make([]int, len(seqs))
	for i := range order {
		order[i] = i
	}
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var (
			wg    sync.WaitGroup
			next  atomic.Int64
			stop  atomic.Bool
			chunk = 64
		)
		for th := 0; th < cfg.Threads; th++ {
			// Each thread has its own generator, derived from the seed, the epoch and the
			// thread; with one thread the texts are taken in order, so the run is
			// reproducible.
			trng := data.NewSplitMix64(cfg.Seed ^ uint64(epoch+1)*0x9e3779b97f4a7c15 ^ uint64(th+1)*0xbf58476d1ce4e5b9)
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := worker{cfg: cfg, in: vec.Data, out: out, keep: keep, neg: negTable, exp: expTable,
					rng: trng, grad: make([]float32, D), sent: make([]int32, 0, 1024)}
				for !stop.Load() {
					lo := int(next.Add(int64(chunk))) - chunk
					if lo >= len(order) {
						return
					}
					if ctx.Err() != nil {
						stop.Store(true)
						return
					}
					var n int64
					for _, k := range order[lo:min(lo+chunk, len(order))] {
						frac := float64(done.Load()) / float64(total)
						lr := float32(cfg.LR * max(1-frac, 1e-4))
						w.text(seqs[k], lr)
						n += int64(len(seqs[k]))
						done.Add(int64(len(seqs[k])))
					}
					rep.Add(n)
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, st, err
		}
	}
	rep.Done()
	st.TrainedTokens = done.Load()
	return vec, st, nil
}

// unigramTable returns a table of size n in which word w fills a share of counts[w]^0.75.
func unigramTable(counts []int64, n int) []int32 {
	var sum float64
	for _, c := range counts {
		sum += math.Pow(float64(c), 0.75)
	}
	table := make([]int32, n)
	w := 0
	cum := math.Pow(float64(counts[0]), 0.75) / sum
	for i := range table {
		table[i] = int32(w)
		if float64(i+1)/float64(n) > cum && w < len(counts)-1 {
			w++
			cum += math.Pow(float64(counts[w]), 0.75) / sum
		}
	}
	return table
}

// worker trains on texts; the vectors it updates are shared.
type worker struct {
	cfg     Config
	in, out []float32
	keep    []float32
	neg     []int32
	exp     []float32
	rng     *data.SplitMix64
	grad    []float32
	sent    []int32
}

// uniform returns a float in [0, 1).
func (w *worker) uniform() float32 { return float32(w.rng.Next()>>40) / (1 << 24) }

// text makes one skip-gram pass over a text at learning rate lr.
func (w *worker) text(seq []int32, lr float32) {
	s := w.sent[:0]
	for _, word := range seq {
		if k := w.keep[word]; k >= 1 || w.uniform() < k {
			s = append(s, word)
		}
	}
	w.sent = s
	D := w.cfg.Dim
	for i, word := range s {
		b := int(w.rng.Next() % uint64(w.cfg.Window))
		span := w.cfg.Window - b
		for j := max(0, i-span); j <= min(len(s)-1, i+span); j++ {
			if j == i {
				continue
			}
			// As word2vec.c: the context word's input vector predicts the word.
			l1 := w.in[int(s[j])*D : int(s[j]+1)*D]
			clear(w.grad)
			for d := 0; d <= w.cfg.Negative; d++ {
				target, label := word, float32(1)
				if d > 0 {
					target = w.neg[w.rng.Next()%uint64(len(w.neg))]
					if target == word {
						continue
					}
					label = 0
				}
				l2 := w.out[int(target)*D : int(target+1)*D]
				f := dot(l1, l2)
				var g float32
				switch {
				case f >= maxExp:
					g = (label - 1) * lr
				case f <= -maxExp:
					g = label * lr
				default:
					g = (label - w.exp[int((f+maxExp)*(expTableSize/(2.0*maxExp)))]) * lr
				}
				update(g, l1, l2, w.grad)
			}
			axpy(1, w.grad, l1)
		}
	}
}

// dot returns the dot product of a and b (of equal length).
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// update adds g*out to grad and g*in to out (of equal length), in one pass: the gradient of
// the input vector takes the output vector before its own update, as word2vec.c has it.
func update(g float32, in, out, grad []float32) {
	out = out[:len(in)]
	grad = grad[:len(in)]
	for i, x := range in {
		o := out[i]
		grad[i] += g * o
		out[i] = o + g*x
	}
}

// axpy adds alpha*x to y (of equal length).
func axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}
