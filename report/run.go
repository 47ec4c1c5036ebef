package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sentibench/sentibench/internal/safetensors"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/train"
)

// The files of a run directory besides train.RunLogFile.
const (
	ConfigFile     = "config.json"
	BestCheckpoint = "best/model.safetensors"
	LastCheckpoint = "last/model.safetensors"
)

// Run is one training run as its directory (or a bare run log) records it. A run still going,
// or one that stopped early, has no Final record; the report shows what is there.
type Run struct {
	// Dir is the run directory, or the run log's path for a bare log.
	Dir string
	// Name labels the run in tables and charts: the directory's base name (LoadRuns makes the
	// names of a list unique).
	Name string
	// Epochs holds the run log's epoch records in file order.
	Epochs []train.EpochRecord
	// Final is the run log's final record, nil while the run has none.
	Final *train.FinalRecord
	// Config is what config.json says (zero without one).
	Config RunConfig
	// CheckpointBytes is the size of best/model.safetensors (0 without one) and
	// CheckpointParams the number of weights in it (counted only when the run has no Final
	// record to say Params).
	CheckpointBytes  int64
	CheckpointParams int
	// Framework is "sentibench" plus the version for the project's own runs, "torch" plus its
	// version for a log written by ../shared/bench/torch_ref.py --json.
	Framework string
	// PeakCUDAMiB holds torch_ref.py's torch.cuda.max_memory_allocated per epoch (its logs
	// only; same order as Epochs), and FinalCUDAMiB the final record's.
	PeakCUDAMiB  []float64
	FinalCUDAMiB float64
}

// RunConfig is the part of a run's config.json the report uses. The file is read loosely: keys
// it does not know are ignored, and so is a known key of an unexpected type.
type RunConfig struct {
	// Model is the model's architecture (key "model", an nn.Config; a bare string is taken as
	// the model's kind).
	Model     nn.Config
	Device    string
	Dropout   *float64 // nil when config.json does not say; Model.Dropout otherwise
	Epochs    int
	BatchSize int
	Threads   int
	// Labels are the run's class names in id order (key "labels"; nil when it does not say).
	Labels []string
	// Raw holds every top-level key as found, for what the fields above do not cover.
	Raw map[string]json.RawMessage
}

// LoadRuns loads each path (a run directory or a bare run log) and gives every run a name that
// is unique in the list: the base name, or more of the path where base names repeat.
func LoadRuns(paths []string) ([]*Run, error) {
	runs := make([]*Run, 0, len(paths))
	for _, p := range paths {
		r, err := LoadRun(p)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	uniqueNames(runs)
	return runs, nil
}

// LoadRun reads a run directory: its run log (required), config.json and the size of its best
// checkpoint (both optional). path may also name a run log file itself, such as the JSONL that
// ../shared/bench/torch_ref.py --json writes: the run is then the log alone.
func LoadRun(path string) (*Run, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	r := &Run{Dir: path, Name: runName(path)}
	logPath := path
	if st.IsDir() {
		logPath = filepath.Join(path, train.RunLogFile)
		if _, err := os.Stat(logPath); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: not a run directory (no %s)", path, train.RunLogFile)
		}
	}
	if err := r.readLog(logPath); err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return r, nil
	}
	if err := r.readConfig(filepath.Join(path, ConfigFile)); err != nil {
		return nil, err
	}
	ckpt := filepath.Join(path, BestCheckpoint)
	if cst, err := os.Stat(ckpt); err == nil {
		r.CheckpointBytes = cst.Size()
		if r.Final == nil {
			if r.CheckpointParams, err = countParams(ckpt); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// extraRecord holds the keys of torch_ref.py's log that train's records lack.
type extraRecord struct {
	PeakCUDAMiB  float64 `json:"peak_cuda_mib"`
	TorchVersion string  `json:"torch_version"`
}

// readLog reads the run log (train.ReadRunLogFile), and the keys of torch_ref.py's records
// that train's lack.
func (r *Run) readLog(path string) error {
	rl, err := train.ReadRunLogFile(path)
	if err != nil {
		return err
	}
	r.Epochs = rl.Epochs
	for i, line := range rl.EpochLines {
		var extra extraRecord
		if err := json.Unmarshal(line, &extra); err != nil {
			return fmt.Errorf("%s: epoch %d: %v", path, rl.Epochs[i].Epoch, jsonError(err))
		}
		r.PeakCUDAMiB = append(r.PeakCUDAMiB, extra.PeakCUDAMiB)
	}
	if rl.Finished {
		var extra extraRecord
		if err := json.Unmarshal(rl.FinalLine, &extra); err != nil {
			return fmt.Errorf("%s: final record: %v", path, jsonError(err))
		}
		f := rl.Final
		r.Final = &f
		r.FinalCUDAMiB = extra.PeakCUDAMiB
		if extra.TorchVersion != "" {
			v, _, _ := strings.Cut(extra.TorchVersion, "+") // "2.15.0+cu132": the build tag is noise here
			r.Framework = "torch " + v
		} else if f.Version != "" {
			r.Framework = "sentibench " + f.Version
		}
	}
	if r.Framework == "" {
		r.Framework = "sentibench"
	}
	return nil
}

// jsonError shortens encoding/json's messages ("json: cannot unmarshal ...").
func jsonError(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

// readConfig reads config.json loosely; a missing file is no error.
func (r *Run) readConfig(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("run config: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("%s: not a JSON object: %v", path, jsonError(err))
	}
	c := RunConfig{Raw: raw}
	if m, ok := raw["model"]; ok {
		var keys map[string]json.RawMessage
		if json.Unmarshal(m, &keys) == nil {
			json.Unmarshal(m, &c.Model) // a field of an unexpected type stays zero
			var d float64
			if json.Unmarshal(keys["dropout"], &d) == nil {
				c.Dropout = &d
			}
		} else {
			json.Unmarshal(m, &c.Model.Kind) // "model": "lstm"
		}
	}
	var dropout float64
	if d, ok := raw["dropout"]; ok && json.Unmarshal(d, &dropout) == nil {
		c.Dropout = &dropout // a top-level "dropout" wins over the model's
	}
	loose := func(key string, v any) {
		if b, ok := raw[key]; ok {
			json.Unmarshal(b, v) // a value of another type leaves v as it was
		}
	}
	loose("device", &c.Device)
	loose("epochs", &c.Epochs)
	loose("batch_size", &c.BatchSize)
	loose("threads", &c.Threads)
	loose("labels", &c.Labels)
	r.Config = c
	return nil
}

// countParams counts the weights of a safetensors checkpoint.
func countParams(path string) (int, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	n := 0
	for _, t := range f.List() {
		n += t.Elems()
	}
	return n, nil
}

// runName is the label of a run at path: the directory's base name, or a log's without .jsonl.
func runName(path string) string {
	clean := filepath.Clean(path)
	base := filepath.Base(clean)
	if base == train.RunLogFile { // a run log given by its own path: name it by its directory
		return filepath.Base(filepath.Dir(clean))
	}
	return strings.TrimSuffix(base, ".jsonl")
}

// uniqueNames lengthens the names that different paths share with the parent directories of
// their paths until they differ, then numbers what still collides (the same path twice).
func uniqueNames(runs []*Run) {
	for depth := 2; depth <= 4; depth++ {
		paths := map[string]map[string]bool{} // name -> the distinct paths that carry it
		for _, r := range runs {
			if paths[r.Name] == nil {
				paths[r.Name] = map[string]bool{}
			}
			paths[r.Name][filepath.Clean(r.Dir)] = true
		}
		changed := false
		for _, r := range runs {
			if len(paths[r.Name]) > 1 {
				if n := lastElems(r.Dir, depth); n != r.Name {
					r.Name, changed = n, true
				}
			}
		}
		if !changed {
			break
		}
	}
	seen := map[string]int{}
	for _, r := range runs {
		seen[r.Name]++
		if k := seen[r.Name]; k > 1 {
			r.Name = fmt.Sprintf("%s#%d", r.Name, k)
		}
	}
}

// lastElems is the last n elements of path, joined with "/".
func lastElems(path string, n int) string {
	parts := strings.Split(filepath.ToSlash(filepath.Clean(path)), "/")
	if len(parts) > n {
		parts = parts[len(parts)-n:]
	}
	return strings.TrimSuffix(strings.Join(parts, "/"), ".jsonl")
}
