package train

// A run's records as TensorBoard scalars (internal/tensorboard), for Hooks.OnEpoch and the
// training step.

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/sentibench/sentibench/internal/tensorboard"
)

// TensorBoardLog writes a run's figures as TensorBoard event files in one directory (by
// default RUN/tb): per optimiser step (Step), per epoch (OnEpoch, every number of the run log's
// epoch line), the final test figures (Final) and the hyperparameters (HParams).
//
// The step axis is the number of optimiser steps taken: a step's scalars at that step (1 for the
// first), an epoch's at the step that ends it, the final figures at the last epoch's. Each step
// is written once: a resumed run opens the log with the records and the optimiser steps its
// checkpoint holds, the events the interrupted run wrote after that step are dropped from the
// old files, and the run writes them again as it repeats those steps.
type TensorBoardLog struct {
	w *tensorboard.Writer
	// epochEnd is the optimiser step at the end of the last epoch recorded.
	epochEnd int64
}

// OpenTensorBoardLog starts the TensorBoard log of a run in dir. A new run passes no records and
// 0 steps; a resumed one the epoch records of its checkpoint and the optimiser steps it has taken
// (nn.Adam.Steps once the checkpoint's state is restored; more than the records' batches when the
// checkpoint was taken inside an epoch).
func OpenTensorBoardLog(dir string, records []EpochRecord, steps int64) (*TensorBoardLog, error) {
	l := &TensorBoardLog{}
	for _, r := range records {
		l.epochEnd += int64(r.TrainBatches)
	}
	if steps < l.epochEnd {
		return nil, fmt.Errorf("train: tensorboard log %s: %d optimiser steps, fewer than the %d batches of the %d epochs recorded", dir, steps, l.epochEnd, len(records))
	}
	var err error
	if len(records) == 0 && steps == 0 {
		l.w, err = tensorboard.Create(dir)
	} else {
		l.w, err = tensorboard.Resume(dir, steps)
	}
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return l, nil
}

// Path is the event file being written.
func (l *TensorBoardLog) Path() string { return l.w.Path() }

// HParams writes the run's configuration as its hyperparameters (every bool, number and string
// of config.json; a new run writes them once, a resumed run keeps the first file's).
func (l *TensorBoardLog) HParams(cfg Config) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("train: tensorboard hyperparameters: %w", err)
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return fmt.Errorf("train: tensorboard hyperparameters: %w", err)
	}
	hp := map[string]any{}
	for k, v := range all {
		switch v.(type) {
		case bool, float64, string:
			hp[k] = v
		}
	}
	if err := l.w.HParams(hp, "", time.Now()); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// StepScalars are the figures of one optimiser step.
type StepScalars struct {
	Loss         float64 // the batch's training loss
	LearningRate float64 // the rate the step used (nn.Adam.LastLR)
	GradNorm     float64 // the gradients' norm before clipping (nn.Adam.LastGradNorm); NaN: not measured
}

// Step writes the scalars of optimiser step step (1 for the first): train/loss,
// train/learning_rate and, when measured, train/grad_norm.
func (l *TensorBoardLog) Step(step int64, s StepScalars) error {
	now := time.Now()
	scalars := []namedNumber{{"train/loss", s.Loss}, {"train/learning_rate", s.LearningRate}}
	if s.GradNorm == s.GradNorm {
		scalars = append(scalars, namedNumber{"train/grad_norm", s.GradNorm})
	}
	for _, sc := range scalars {
		if err := l.w.Scalar(sc.name, step, sc.value, now); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	return nil
}

// OnEpoch writes every number of the epoch's run-log line as the scalar "epoch/<its JSON key>"
// (a map's numbers as "epoch/<key>/<name>") at the step that ends the epoch, and flushes. It has
// Hooks.OnEpoch's signature.
func (l *TensorBoardLog) OnEpoch(rec EpochRecord) error {
	l.epochEnd += int64(rec.TrainBatches)
	fields, err := numbers(rec)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, f := range fields {
		if err := l.w.Scalar("epoch/"+f.name, l.epochEnd, f.value, now); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	return l.Flush()
}

// Final writes the final test figures and the best epoch's (every number of the run log's last
// line among them) as "final/<JSON key>" at the last epoch's step.
func (l *TensorBoardLog) Final(rec FinalRecord) error {
	fields, err := numbers(rec)
	if err != nil {
		return err
	}
	keep := map[string]bool{"test_loss": true, "test_acc": true, "best_epoch": true, "best_valid_loss": true,
		"best_valid_acc": true, "total_seconds": true, "test_seconds": true, "peak_rss_mib": true, "peak_gpu_mib": true,
		"test_metrics/macro_precision": true, "test_metrics/macro_recall": true, "test_metrics/macro_f1": true, "test_metrics/mae": true}
	now := time.Now()
	for _, f := range fields {
		if !keep[f.name] {
			continue
		}
		if err := l.w.Scalar("final/"+f.name, l.epochEnd, f.value, now); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	return l.Flush()
}

// Flush makes what was written visible to TensorBoard.
func (l *TensorBoardLog) Flush() error {
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// Close flushes and closes the event file.
func (l *TensorBoardLog) Close() error {
	if err := l.w.Close(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// namedNumber is one number of a record, by its JSON key.
type namedNumber struct {
	name  string
	value float64
}

// numbers lists the numbers of a record as its JSON encoding holds them (nested maps' numbers
// as key/name), sorted by name.
func numbers(rec any) ([]namedNumber, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("train: tensorboard: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("train: tensorboard: %w", err)
	}
	var out []namedNumber
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			switch x := v.(type) {
			case float64:
				out = append(out, namedNumber{prefix + k, x})
			case map[string]any:
				walk(prefix+k+"/", x)
			}
		}
	}
	walk("", m)
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}
