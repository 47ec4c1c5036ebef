package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sentibench/sentibench/internal/atomicfile"
)

// The run log (RunLogFile in a run directory) holds one JSON object per line: an EpochRecord
// per finished epoch, then one FinalRecord after the test. Its field names follow
// ../shared/bench/torch_ref.py's --json output, so the two logs compare key for key.

// RunLogFile is the run log's file name inside a run directory.
const RunLogFile = "run.jsonl"

// EpochRecord is one epoch's line of the run log.
type EpochRecord struct {
	Epoch     int     `json:"epoch"`
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_acc"`
	ValidLoss float64 `json:"valid_loss"`
	ValidAcc  float64 `json:"valid_acc"`
	// TrainBatches is the number of training batches of the epoch.
	TrainBatches int `json:"train_batches"`
	// TrainSeconds and ValidSeconds split the epoch's wall time.
	TrainSeconds float64 `json:"train_seconds"`
	ValidSeconds float64 `json:"valid_seconds"`
	// LR is the learning rate of the epoch's last optimiser step (it varies with a schedule).
	LR float64 `json:"lr,omitempty"`
	// ValidMetrics are the valid split's class figures (macro-F1, per class, confusion, MAE)
	// of a run of more than two classes; nil (absent) for a binary run.
	ValidMetrics *ClassMetrics `json:"valid_metrics,omitempty"`
	EpochStats
}

// FinalRecord is the run log's last line: the best checkpoint on the test split, and what the
// run was.
type FinalRecord struct {
	TestLoss      float64 `json:"test_loss"`
	TestAcc       float64 `json:"test_acc"`
	BestEpoch     int     `json:"best_epoch"`
	BestValidLoss float64 `json:"best_valid_loss"`
	BestValidAcc  float64 `json:"best_valid_acc"`
	TotalSeconds  float64 `json:"total_seconds"`
	TestSeconds   float64 `json:"test_seconds"`
	PeakRSSMiB    float64 `json:"peak_rss_mib,omitempty"`
	PeakGPUMiB    float64 `json:"peak_gpu_mib,omitempty"`

	Model     string         `json:"model"`
	Dropout   float64        `json:"dropout"`
	Params    int            `json:"params"`
	Epochs    int            `json:"epochs"`
	BatchSize int            `json:"batch_size"`
	Seed      uint64         `json:"seed"`
	Device    string         `json:"device"`
	Threads   int            `json:"threads"`
	Sizes     map[string]int `json:"sizes"`
	Version   string         `json:"version"`
	// TestMetrics are the test split's class figures of a run of more than two classes; nil
	// (absent) for a binary run.
	TestMetrics *ClassMetrics `json:"test_metrics,omitempty"`
}

// RunLog is a run log read back: the epoch records in file order and, once the run has
// finished, the final record.
type RunLog struct {
	Epochs []EpochRecord
	// Final is the final record; Finished says that there is one (the run was tested).
	Final    FinalRecord
	Finished bool
	// EpochLines and FinalLine are the records' JSON lines as found, for readers of keys the
	// records lack (the logs of ../shared/bench/torch_ref.py --json have a few more).
	EpochLines [][]byte
	FinalLine  []byte
}

// ReadRunLog reads the run log of the run directory dir. A missing log is an error that wraps
// fs.ErrNotExist.
func ReadRunLog(dir string) (RunLog, error) {
	return ReadRunLogFile(filepath.Join(dir, RunLogFile))
}

// ReadRunLogFile reads a run log: epoch records (an "epoch" key, counting from 1), then at most
// one final record (a "test_acc" key), one JSON object per line; blank lines are skipped. An
// error names the file and line.
func ReadRunLogFile(path string) (RunLog, error) {
	var rl RunLog
	data, err := os.ReadFile(path)
	if err != nil {
		return rl, fmt.Errorf("run log: %w", err)
	}
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", path, n+1, fmt.Sprintf(format, a...))
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(line, &keys); err != nil {
			return rl, bad("not a JSON object: %v", jsonError(err))
		}
		if rl.Finished {
			return rl, bad("a record after the final record (line with \"test_acc\")")
		}
		switch {
		case keys["test_acc"] != nil:
			if err := json.Unmarshal(line, &rl.Final); err != nil {
				return rl, bad("final record: %v", jsonError(err))
			}
			rl.Finished, rl.FinalLine = true, line
		case keys["epoch"] != nil:
			var e EpochRecord
			if err := json.Unmarshal(line, &e); err != nil {
				return rl, bad("epoch record: %v", jsonError(err))
			}
			if e.Epoch < 1 {
				return rl, bad("epoch %d: epochs count from 1", e.Epoch)
			}
			rl.Epochs = append(rl.Epochs, e)
			rl.EpochLines = append(rl.EpochLines, line)
		default:
			return rl, bad("neither an epoch record (no \"epoch\") nor the final record (no \"test_acc\")")
		}
	}
	return rl, nil
}

// jsonError shortens encoding/json's messages ("json: cannot unmarshal ...").
func jsonError(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

// writeRunLog writes the run log of dir (atomically): the epoch records, then final if it is
// not nil. Writing the whole log at once means that a failure leaves the previous log whole.
func writeRunLog(dir string, epochs []EpochRecord, final *FinalRecord) error {
	var b []byte
	add := func(rec any) error {
		line, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		b = append(append(b, line...), '\n')
		return nil
	}
	for _, r := range epochs {
		if err := add(r); err != nil {
			return err
		}
	}
	if final != nil {
		if err := add(final); err != nil {
			return err
		}
	}
	return atomicfile.WriteFile(filepath.Join(dir, RunLogFile), b)
}

// appendRunLog adds one record at the end of dir's run log.
func appendRunLog(dir string, rec any) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	p := filepath.Join(dir, RunLogFile)
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("train: %s: %w", p, err)
	}
	return f.Close()
}

// rewriteRunLog writes the run log from the checkpoint's records (atomically), so that it
// never holds an epoch that the checkpoint does not.
func (t *trainer) rewriteRunLog() error {
	if !t.writes() {
		return nil
	}
	return writeRunLog(t.dir, t.st.Records, nil)
}

func (t *trainer) appendRunLog(rec any) error {
	if !t.writes() {
		return nil
	}
	return appendRunLog(t.dir, rec)
}

// EpochLine formats an epoch as torch_ref.py prints it; a run of more than two classes adds the
// valid split's macro-F1 (and MAE, for ordinal classes) after its accuracy.
func EpochLine(r EpochRecord) string {
	mins, secs := int(r.Seconds)/60, int(r.Seconds)%60
	return fmt.Sprintf("Epoch: %02d | Epoch Time: %dm %ds | Train Loss: %.3f | Train Acc: %.2f%% | Val. Loss: %.3f | Val. Acc: %.2f%%%s | Peak RSS: %.0f MiB",
		r.Epoch, mins, secs, r.TrainLoss, 100*r.TrainAcc, r.ValidLoss, 100*r.ValidAcc, r.ValidMetrics.line("Val."), r.PeakRSSMiB)
}

// TestLine formats the final record as the run's last line; a run of more than two classes adds
// the test split's macro-F1 (and MAE, for ordinal classes) after its accuracy.
func TestLine(f FinalRecord) string {
	mins, secs := int(f.TotalSeconds)/60, int(f.TotalSeconds)%60
	return fmt.Sprintf("Test (best epoch %02d, Val. Loss: %.3f) | Test Loss: %.3f | Test Acc: %.2f%%%s | Total Time: %dm %ds | Peak RSS: %.0f MiB",
		f.BestEpoch, f.BestValidLoss, f.TestLoss, 100*f.TestAcc, f.TestMetrics.line("Test"), mins, secs, f.PeakRSSMiB)
}

// line is the part of an epoch or test line that m adds: " | Val. Macro-F1: 0.512 | Val. MAE:
// 1.234" ("" for nil: a binary run).
func (m *ClassMetrics) line(prefix string) string {
	if m == nil {
		return ""
	}
	s := fmt.Sprintf(" | %s Macro-F1: %.3f", prefix, m.MacroF1)
	if m.MAE != nil {
		s += fmt.Sprintf(" | %s MAE: %.3f", prefix, *m.MAE)
	}
	return s
}
