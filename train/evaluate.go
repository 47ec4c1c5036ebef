package train

// Evaluation: the recipe's loss of a batch's labels, the model over a split in evaluation mode,
// and the test of the best checkpoint at the end of a run.

import (
	"fmt"
	"time"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/nn"
)

// labelLoss is the recipe's loss of a batch's labels: binary cross-entropy on the one logit of
// a binary model (the recipe), softmax cross-entropy on the K logits of a K-class model.
type labelLoss struct {
	outputs int
	bce     *nn.BCEWithLogits
}

func newLabelLoss(outputs int) *labelLoss {
	return &labelLoss{outputs: outputs, bce: nn.NewBCEWithLogits(nil)}
}

// of returns the loss of labels (class ids, as the batch holds them); it is valid until the
// next call.
func (l *labelLoss) of(labels []float32) nn.PerExampleLoss {
	if l.outputs == 1 {
		l.bce.Targets = labels
		return l.bce
	}
	ids := make([]int, len(labels)) // the loss keeps them for its graph's backward pass
	for i, y := range labels {
		ids[i] = int(y)
		if y != y { // NaN: an unlabelled example, which the loss refuses by name
			ids[i] = data.NoLabel
		}
	}
	return nn.NewSoftmaxCrossEntropy(ids)
}

// evaluate runs the model over a split in evaluation mode (dropout off).
// On a data-parallel run the ranks share the batches (evaluateShared).
func (t *trainer) evaluate(indices []int) (Metrics, error) {
	if t.parallel() {
		return t.evaluateShared(indices)
	}
	return evaluate(t.eng, t.ds, indices, t.cfg.BatchSize)
}

func evaluate(eng engine, ds *dataset, indices []int, batchSize int) (Metrics, error) {
	tally, err := evaluateBatches(eng, ds, data.EvalBatches(indices, ds.lengths, batchSize), batchSize)
	if err != nil {
		return Metrics{}, err
	}
	return tally.Metrics(), nil
}

// evaluateBatches tallies the model's predictions over the given evaluation batches.
func evaluateBatches(eng engine, ds *dataset, batches [][]int, batchSize int) (*Tally, error) {
	tally := NewTally(max(len(ds.classes), 2), ds.values)
	recipe := newLabelLoss(ds.outputs)
	losses := make([]float64, 0, batchSize)
	for _, batch := range batches {
		in, labels, err := ds.input(batch)
		if err != nil {
			return nil, err
		}
		res, err := eng.Step(in, recipe.of(labels), nn.Eval, nil)
		if err != nil {
			return nil, err
		}
		losses = losses[:0]
		for _, l := range res.PerExample {
			losses = append(losses, float64(l))
		}
		tally.AddBatch(res.Logits, labels, losses)
	}
	return tally, nil
}

// test evaluates the best checkpoint on the test split and writes the run log's last line.
func (t *trainer) test() (*Result, error) {
	st := t.st
	if st.BestEpoch > 0 {
		if err := t.loadBest(); err != nil {
			return nil, err
		}
		if err := t.eng.Push(); err != nil {
			return nil, err
		}
	} else {
		fmt.Fprintln(t.hooks.Log, "warning: no finite validation loss; testing the last epoch's weights")
	}
	t0 := time.Now()
	m, err := t.evaluate(t.ds.test)
	if err != nil {
		return nil, fmt.Errorf("train: test: %w", err)
	}
	total := t.seconds()
	final := FinalRecord{
		TestLoss: m.Loss, TestAcc: m.Acc, BestEpoch: st.BestEpoch, BestValidLoss: st.BestValidLoss, BestValidAcc: st.BestValidAcc,
		TotalSeconds: total, TestSeconds: time.Since(t0).Seconds(), PeakRSSMiB: processPeakRSSMiB(),
		Model: t.cfg.Kind, Dropout: t.cfg.Dropout, Params: countParams(t.model), Epochs: st.Epoch, BatchSize: t.cfg.BatchSize,
		Seed: t.cfg.Seed, Device: t.cfg.Device, Threads: t.cfg.Threads, Sizes: t.ds.sizes(), Version: Version,
		TestMetrics: t.classMetrics(m),
	}
	// The whole log at once: a retest replaces the recorded test only when the new one is there.
	if !t.writes() {
		return &Result{RunDir: t.dir, Epochs: st.Records, Final: final, Test: m}, nil
	}
	if err := writeRunLog(t.dir, st.Records, &final); err != nil {
		return nil, err
	}
	if t.tb != nil {
		if err := t.tb.Final(final); err != nil {
			return nil, err
		}
	}
	fmt.Fprintln(t.hooks.Log, TestLine(final))
	return &Result{RunDir: t.dir, Epochs: st.Records, Final: final, Test: m}, nil
}

// classMetrics is what the run log records of a pass's class figures: all of them for a run of
// more than two classes, none (nil) for a binary run, whose log stays the recipe's.
func (t *trainer) classMetrics(m Metrics) *ClassMetrics {
	if len(t.ds.classes) <= 2 {
		return nil
	}
	return &m.ClassMetrics
}

// countCorrect counts the right predictions among the labelled examples (NaN: no label). The
// logits are one per example (binary: right when it is above 0 for label 1) or a row of K per
// example (right when the largest is the label's).
func countCorrect(logits, labels []float32) (correct, labelled int) {
	if len(logits) == len(labels) {
		for i, z := range logits {
			if labels[i] != labels[i] {
				continue
			}
			labelled++
			if (z > 0) == (labels[i] > 0.5) {
				correct++
			}
		}
		return correct, labelled
	}
	k := len(logits) / max(len(labels), 1)
	for i, y := range labels {
		if y != y {
			continue
		}
		labelled++
		if nn.Predicted(logits[i*k:(i+1)*k]) == int(y) {
			correct++
		}
	}
	return correct, labelled
}
