package train

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
}
