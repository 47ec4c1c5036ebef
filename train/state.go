package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sentibench/sentibench/internal/safetensors"
	"github.com/sentibench/sentibench/nn"
)

// The files of a checkpoint directory (last/ and best/).
const (
	WeightsFile   = "model.safetensors"     // the weights, with PyTorch's names
	OptimizerFile = "optimizer.safetensors" // Adam's state (last/ only)
	StateFile     = "state.json"            // the trainer's state (last/ only)
	LastDir       = "last"
	BestDir       = "best"
)

// state is the trainer's part of a checkpoint: where the run is, and everything random or
// accumulated that a resumed run needs to go on exactly as if it had never stopped.
type state struct {
	// Epoch is the number of completed epochs.
	Epoch int `json:"epoch"`
	// Batch is the number of completed training batches of epoch Epoch+1 when the checkpoint
	// was taken inside an epoch (on SIGINT); 0 at an epoch's end.
	Batch int `json:"batch"`
	// DataRNG is the data-order generator's state: before the next epoch's batches are drawn
	// (inside an epoch: before that epoch's batches were drawn, so they are drawn again).
	DataRNG uint64 `json:"data_rng"`
	// ModelRNG is the dropout generator's state (rank 0's in a data-parallel run).
	ModelRNG []byte `json:"model_rng"`
	// Ranks is the number of ranks of the data-parallel run that wrote the checkpoint (absent,
	// so 0, for one process), and RankRNGs the dropout generators' states of its ranks 1 to
	// Ranks-1, in rank order: a resume on as many ranks restores each rank's masks.
	Ranks    int      `json:"ranks,omitempty"`
	RankRNGs [][]byte `json:"rank_rngs,omitempty"`
	// Partial holds the sums of the epoch a mid-epoch checkpoint interrupted.
	Partial partialEpoch `json:"partial"`
	// Best is the best epoch so far (lowest valid loss); BestEpoch 0 means none yet.
	BestEpoch     int     `json:"best_epoch"`
	BestValidLoss float64 `json:"best_valid_loss"`
	BestValidAcc  float64 `json:"best_valid_acc"`
	// BadEpochs counts epochs since the best one (early stopping).
	BadEpochs int `json:"bad_epochs"`
	// Records are the run log's epoch lines so far (the run log is rewritten from them on
	// resume, so it never holds an epoch the checkpoint does not).
	Records []EpochRecord `json:"records"`
	// Done is set when training finished (all epochs, or early stopping).
	Done bool `json:"done"`
	// Seconds is the wall time that the run's processes spent on it up to the checkpoint
	// (absent, so 0, in the checkpoints of older versions).
	Seconds float64 `json:"seconds,omitempty"`
}

// partialEpoch is what an epoch has accumulated so far.
type partialEpoch struct {
	// LossSum sums the batch losses times the batch sizes over LossN examples; Correct counts
	// the right predictions among the N labelled ones.
	LossSum float64 `json:"loss_sum"`
	LossN   int     `json:"loss_n"`
	Correct int     `json:"correct"`
	N       int     `json:"n"`
	Tokens  int64   `json:"tokens"`
	Seconds float64 `json:"seconds"`
}

// check tells a state the trainer wrote from a damaged one, whose counts would index batches
// and epochs that do not exist.
func (st *state) check() error {
	p := st.Partial
	switch {
	case st.Epoch < 0 || st.Batch < 0 || st.BadEpochs < 0:
		return fmt.Errorf("negative counts (epoch %d, batch %d, bad epochs %d)", st.Epoch, st.Batch, st.BadEpochs)
	case st.BestEpoch < 0 || st.BestEpoch > st.Epoch:
		return fmt.Errorf("best epoch %d outside the %d epochs done", st.BestEpoch, st.Epoch)
	case len(st.Records) != st.Epoch:
		return fmt.Errorf("%d epoch records for %d epochs done", len(st.Records), st.Epoch)
	case st.Ranks < 0 || max(st.Ranks-1, 0) != len(st.RankRNGs):
		return fmt.Errorf("%d ranks' generator states for a run of %d ranks", len(st.RankRNGs)+1, st.Ranks)
	case p.LossN < 0 || p.N < 0 || p.Correct < 0 || p.Correct > p.N || p.Tokens < 0:
		return fmt.Errorf("the partial epoch's counts are inconsistent (%d of %d correct, %d losses, %d tokens)", p.Correct, p.N, p.LossN, p.Tokens)
	}
	return nil
}

// saveLast writes the last checkpoint: weights, optimiser state and trainer state.
func saveLast(dir string, m nn.Model, opt *nn.Adam, st *state) error {
	var w, o bytes.Buffer
	if err := safetensors.Encode(&w, nn.ParamTensors(m.Params()), nil); err != nil {
		return fmt.Errorf("train: encoding the weights: %w", err)
	}
	if err := safetensors.Encode(&o, nn.AdamStateTensors(opt.State()), nil); err != nil {
		return fmt.Errorf("train: encoding the optimiser state: %w", err)
	}
	js, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("train: encoding the trainer state: %w", err)
	}
	return writeCheckpointDir(dir, LastDir, map[string][]byte{
		WeightsFile:   w.Bytes(),
		OptimizerFile: o.Bytes(),
		StateFile:     js,
	})
}

// saveBest writes the best checkpoint (weights only).
func saveBest(dir string, m nn.Model, epoch int, validLoss float64) error {
	var w bytes.Buffer
	meta := map[string]string{"format": "pt", "epoch": fmt.Sprint(epoch), "valid_loss": fmt.Sprint(validLoss)}
	if err := safetensors.Encode(&w, nn.ParamTensors(m.Params()), meta); err != nil {
		return fmt.Errorf("train: encoding the weights: %w", err)
	}
	return writeCheckpointDir(dir, BestDir, map[string][]byte{WeightsFile: w.Bytes()})
}

// loadLast restores the last checkpoint of a run directory into the model and optimiser and
// returns the trainer state.
func loadLast(dir string, m nn.Model, opt *nn.Adam) (*state, error) {
	ck, err := openCheckpointDir(dir, LastDir)
	if err != nil {
		return nil, fmt.Errorf("train: nothing to resume: %w", err)
	}
	st, err := readState(ck)
	if err != nil {
		return nil, err
	}
	if err := nn.LoadWeights(filepath.Join(ck, WeightsFile), m); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	f, err := safetensors.Open(filepath.Join(ck, OptimizerFile))
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer f.Close()
	adam, err := nn.AdamStateFromFile(f)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := opt.SetState(adam, m.Params()); err != nil {
		return nil, fmt.Errorf("train: %s: %w", f.Path(), err)
	}
	return st, nil
}

// readState reads and checks the trainer state of the checkpoint directory ck.
func readState(ck string) (*state, error) {
	var st state
	p := filepath.Join(ck, StateFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("train: %s: %w", p, err)
	}
	if err := st.check(); err != nil {
		return nil, fmt.Errorf("train: %s: %w (damaged checkpoint?)", p, err)
	}
	return &st, nil
}
