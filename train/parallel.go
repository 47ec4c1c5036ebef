package train

// Data-parallel training: what a run does with a Comm of more than one rank. Every rank reads
// the same data, builds the same model from the same seed and draws the same global batches
// (data.BucketBatches); each trains on its contiguous share of every batch's reviews, and one
// allreduce per step sums the ranks' gradients, weighted by their shares, into the gradient of
// the global batch's mean loss, together with the batch's loss sum and counts. Clipping and
// Adam then run on every rank on the same numbers. Validation and test split the evaluation
// batches across the ranks and sum their tallies. Only rank 0 writes the run directory.
//
// With one rank none of this runs: the trainer takes exactly the steps it takes without a Comm.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/nn"
)

// batchSums are one training batch's figures: summed over its examples, so that ranks can add
// theirs.
type batchSums struct {
	lossSum                  float64
	lossN, correct, labelled int
	tokens                   int64
}

// sumsOf are the figures of a batch that res ran on, of tokens real tokens (no labels: a rank's
// empty share).
func sumsOf(tokens int, labels []float32, res nn.StepResult) batchSums {
	if len(labels) == 0 {
		return batchSums{}
	}
	correct, labelled := countCorrect(res.Logits, labels)
	return batchSums{lossSum: res.Loss * float64(len(labels)), lossN: len(labels), correct: correct, labelled: labelled, tokens: int64(tokens)}
}

// add adds a batch's figures to the epoch's.
func (p *partialEpoch) add(b batchSums) {
	p.LossSum += b.lossSum
	p.LossN += b.lossN
	p.Correct += b.correct
	p.N += b.labelled
	p.Tokens += b.tokens
}

// saveBest writes the best checkpoint (rank 0).
func (t *trainer) saveBest(epoch int, validLoss float64) error {
	if !t.writes() {
		return nil
	}
	return saveBest(t.dir, t.model, epoch, validLoss)
}

// loadBest reads the best checkpoint's weights into the model: rank 0 from the run directory,
// which it broadcasts to the other ranks of a data-parallel run.
func (t *trainer) loadBest() error {
	if t.writes() {
		ck, err := openCheckpointDir(t.dir, BestDir)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if err := nn.LoadWeights(filepath.Join(ck, WeightsFile), t.model); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	if t.parallel() {
		return t.broadcastWeights()
	}
	return nil
}

// interrupted says whether to stop before the next batch: on one rank when ctx is cancelled;
// on several, when a rank's ctx was cancelled at the last step's allreduce (so that every rank
// stops after the same batch).
func (t *trainer) interrupted(ctx context.Context) bool {
	if t.parallel() {
		return t.stopAll
	}
	return ctx.Err() != nil
}

// parallel reports whether the run has more than one rank.
func (t *trainer) parallel() bool { return t.comm.Size() > 1 }

// writes reports whether this rank writes the run directory and the log: rank 0.
func (t *trainer) writes() bool { return t.comm.Rank() == 0 }

// share is this rank's part of a global batch: a contiguous run of its reviews, the ranks'
// parts as equal as can be (empty when the batch has fewer reviews than there are ranks).
func share(batch []int, rank, size int) []int {
	lo, hi := len(batch)*rank/size, len(batch)*(rank+1)/size
	return batch[lo:hi]
}

// trainableParams are the parameters that get gradients, in the model's order.
func trainableParams(m nn.Model) []*nn.Param {
	var ps []*nn.Param
	for _, p := range m.Params() {
		if !p.Frozen && p.Grad != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// The figures that travel after the gradients in each step's allreduce.
const (
	slotLossSum = iota
	slotLossN
	slotCorrect
	slotLabelled
	slotTokens
	slotStop
	nSlots
)

// allreduceStep sums the ranks' gradients and figures of one step, in one allreduce over one
// flat buffer. Each rank's gradient is of the mean loss over its own n reviews, so it enters
// the sum weighted by n/globalN: the sum is the gradient of the mean over the global batch's
// globalN reviews. stop is this rank's wish to stop (an interrupt); the result says whether any
// rank wished it. On return b and the models' gradients are the global batch's on every rank.
func (t *trainer) allreduceStep(b *batchSums, n, globalN int, stop bool) (stopAll bool, err error) {
	params := trainableParams(t.model)
	size := nSlots
	for _, p := range params {
		size += len(p.Grad)
	}
	if cap(t.gradBuf) < size {
		t.gradBuf = make([]float32, size)
	}
	buf := t.gradBuf[:size]
	w := float32(float64(n) / float64(globalN))
	off := 0
	for _, p := range params {
		dst := buf[off : off+len(p.Grad)]
		if n == 0 { // no step ran: the gradients are stale
			clear(dst)
		} else {
			for i, g := range p.Grad {
				dst[i] = g * w
			}
		}
		off += len(p.Grad)
	}
	slots := buf[off:]
	slots[slotLossSum] = float32(b.lossSum)
	slots[slotLossN] = float32(b.lossN)
	slots[slotCorrect] = float32(b.correct)
	slots[slotLabelled] = float32(b.labelled)
	slots[slotTokens] = float32(b.tokens)
	slots[slotStop] = 0
	if stop {
		slots[slotStop] = 1
	}
	began := time.Now()
	if err := t.comm.AllreduceSum(buf); err != nil {
		return false, fmt.Errorf("train: allreduce of the gradients: %w", err)
	}
	t.reduced.seconds += time.Since(began).Seconds()
	t.reduced.steps++
	t.reduced.bytes = 4 * int64(len(buf))
	off = 0
	for _, p := range params {
		copy(p.Grad, buf[off:off+len(p.Grad)])
		off += len(p.Grad)
	}
	*b = batchSums{lossSum: float64(slots[slotLossSum]), lossN: int(slots[slotLossN]), correct: int(slots[slotCorrect]),
		labelled: int(slots[slotLabelled]), tokens: int64(slots[slotTokens])}
	return slots[slotStop] > 0, nil
}

// dropoutRNG is the generator of rank's dropout masks, for rank > 0: rank 0 goes on with the
// run's generator (the one that initialised the weights), the others draw from generators of
// their own seeded from the run's seed and the rank, so that the ranks' masks are not the same
// and a run is repeatable for a given seed and number of ranks.
func dropoutRNG(seed uint64, rank int) *nn.RNG {
	return nn.NewRNG(data.NewSplitMix64(seed ^ (0x9e3779b97f4a7c15 * uint64(rank))).Next())
}

// checkSameStart makes sure that every rank starts from rank 0's weights: the ranks compare
// their model's size, their data's and the number of weights, then the weights themselves
// (broadcast from rank 0). Every rank gets the same error, naming the ranks that differ.
func (t *trainer) checkSameStart() error {
	size, rank := t.comm.Size(), t.comm.Rank()
	params := t.model.Params()
	nw := 0
	for _, p := range params {
		nw += p.Size()
	}
	// Step 1: the shapes of things, one row per rank.
	const cols = 4
	shape := make([]float32, size*cols)
	copy(shape[rank*cols:], []float32{float32(nw), float32(len(t.ds.train)), float32(len(t.ds.valid)), float32(len(t.ds.test))})
	if err := t.comm.AllreduceSum(shape); err != nil {
		return fmt.Errorf("train: comparing the ranks: %w", err)
	}
	names := []string{"weights", "train reviews", "valid reviews", "test reviews"}
	var errs []error
	for r := 1; r < size; r++ {
		for c := range cols {
			if a, b := shape[r*cols+c], shape[c]; a != b {
				errs = append(errs, fmt.Errorf("rank %d has %.0f %s, rank 0 has %.0f", r, a, names[c], b))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("train: the ranks differ (same data, flags and build on every rank?): %w", errors.Join(errs...))
	}
	// Step 2: the weights.
	mine := make([]float32, 0, nw)
	for _, p := range params {
		mine = append(mine, p.Data()...)
	}
	root := append([]float32(nil), mine...)
	if err := t.comm.Broadcast(root, 0); err != nil {
		return fmt.Errorf("train: comparing the ranks' weights: %w", err)
	}
	differs := make([]float32, size)
	for i := range mine {
		if math.Float32bits(mine[i]) != math.Float32bits(root[i]) {
			differs[rank] = 1
			break
		}
	}
	if err := t.comm.AllreduceSum(differs); err != nil {
		return fmt.Errorf("train: comparing the ranks' weights: %w", err)
	}
	for r, d := range differs {
		if d > 0 {
			errs = append(errs, fmt.Errorf("rank %d's initial weights differ from rank 0's", r))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("train: the ranks differ (same seed, vocabulary and word vectors on every rank?): %w", errors.Join(errs...))
	}
	return nil
}

// broadcastWeights gives every rank rank 0's weights (after rank 0 read the best checkpoint).
func (t *trainer) broadcastWeights() error {
	for _, p := range t.model.Params() {
		if err := t.comm.Broadcast(p.Data(), 0); err != nil {
			return fmt.Errorf("train: broadcasting %s: %w", p.Name, err)
		}
	}
	return nil
}

// evaluateShared evaluates a split on several ranks: each takes every size-th evaluation batch,
// and the tallies are summed.
func (t *trainer) evaluateShared(indices []int) (Metrics, error) {
	batches := data.EvalBatches(indices, t.ds.lengths, t.cfg.BatchSize)
	var mine [][]int
	for i := t.comm.Rank(); i < len(batches); i += t.comm.Size() {
		mine = append(mine, batches[i])
	}
	tally, err := evaluateBatches(t.eng, t.ds, mine, t.cfg.BatchSize)
	if err != nil {
		return Metrics{}, err
	}
	if err := tally.allreduce(t.comm); err != nil {
		return Metrics{}, err
	}
	return tally.Metrics(), nil
}

// allreduce sums the ranks' tallies (the loss sum in float32).
func (t *Tally) allreduce(c Comm) error {
	buf := []float32{float32(t.lossSum), float32(t.n), float32(t.correct)}
	for _, row := range t.confusion {
		for _, v := range row {
			buf = append(buf, float32(v))
		}
	}
	if err := c.AllreduceSum(buf); err != nil {
		return fmt.Errorf("train: allreduce of the evaluation: %w", err)
	}
	t.lossSum, t.n, t.correct = float64(buf[0]), int(buf[1]), int(buf[2])
	k := 3
	for _, row := range t.confusion {
		for j := range row {
			row[j] = int(buf[k])
			k++
		}
	}
	return nil
}

// allreduceTimes are an epoch's allreduces of the gradients (the wait for the slowest rank
// included).
type allreduceTimes struct {
	steps   int
	seconds float64
	bytes   int64 // per step
}

// logAllreduce reports the epoch's allreduces after its line, and starts counting anew.
func (t *trainer) logAllreduce() {
	if !t.parallel() {
		return
	}
	r := t.reduced
	t.reduced = allreduceTimes{}
	fmt.Fprintf(t.hooks.Log, "Allreduce: %d steps, %.1f ms per step (waiting for the slowest rank included), %.2f MB per step\n",
		r.steps, 1000*r.seconds/float64(max(r.steps, 1)), float64(r.bytes)/1e6)
}
