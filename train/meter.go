package train

import "time"

// Phase is a part of a training epoch that a Meter times on its own.
type Phase int

// The phases of an epoch, in the order a training step goes through them.
const (
	PhaseData      Phase = iota // assembling the batch (padding, feature reads)
	PhaseForward                // building the graph and the forward pass
	PhaseBackward               // the backward pass
	PhaseOptimizer              // the optimiser step
	PhaseValid                  // the validation pass after the training batches
	numPhases
)

// String names the phase as the run log does ("data", "forward", ...).
func (p Phase) String() string {
	switch p {
	case PhaseData:
		return "data"
	case PhaseForward:
		return "forward"
	case PhaseBackward:
		return "backward"
	case PhaseOptimizer:
		return "optimizer"
	case PhaseValid:
		return "valid"
	}
	return "unknown"
}

// Phases lists every phase in order.
func Phases() []Phase {
	return []Phase{PhaseData, PhaseForward, PhaseBackward, PhaseOptimizer, PhaseValid}
}

// EpochStats is what a Meter measured over one epoch. Fields a meter cannot measure stay zero
// (and are left out of the run log).
type EpochStats struct {
	// Seconds is the epoch's wall time: training plus validation, as torch_ref.py counts it.
	Seconds float64 `json:"epoch_seconds"`
	// PhaseSeconds is the wall time of each phase, by Phase.String().
	PhaseSeconds map[string]float64 `json:"phase_seconds,omitempty"`
	// PeakRSSMiB is the process's peak resident memory during this epoch.
	PeakRSSMiB float64 `json:"peak_rss_mib,omitempty"`
	// PeakRSSMethod says how PeakRSSMiB was measured: "vmhwm" (the kernel's high-water mark,
	// reset at the epoch's start: this epoch alone) or "ru_maxrss" (getrusage: the whole
	// process's peak so far, earlier epochs and data loading included).
	PeakRSSMethod string `json:"peak_rss_method,omitempty"`
	// PeakHeapMiB is the Go heap's peak during this epoch.
	PeakHeapMiB float64 `json:"peak_heap_mib,omitempty"`
	// PeakGPUMiB is the device memory high-water mark of the project's allocator; GPUUsedMiB
	// and GPUTotalMiB are the driver's view at the end of the epoch.
	PeakGPUMiB  float64 `json:"peak_gpu_mib,omitempty"`
	GPUUsedMiB  float64 `json:"gpu_used_mib,omitempty"`
	GPUTotalMiB float64 `json:"gpu_total_mib,omitempty"`
	// Tokens is the number of real tokens trained on; TokensPerSecond divides it by the
	// training time (validation excluded).
	Tokens          int64   `json:"train_tokens,omitempty"`
	TokensPerSecond float64 `json:"tokens_per_second,omitempty"`
	// GFLOPS estimates the achieved rate of the training passes' matrix products.
	GFLOPS float64 `json:"gflops,omitempty"`
}

// Meter measures the epochs of a run. Package profile provides the full meter (peak RSS, heap,
// GPU memory); WallClock, the default, measures wall time and throughput alone.
//
// The trainer calls StartEpoch, then Begin/End around each phase of each step (or Add with a
// duration measured elsewhere: the step runner times the forward and backward passes itself),
// AddWork once per training batch, then EndEpoch.
type Meter interface {
	StartEpoch(epoch int)
	Begin(p Phase)
	End(p Phase)
	Add(p Phase, d time.Duration)
	// AddWork counts one training batch's real tokens and estimated floating-point operations.
	AddWork(tokens int, flops float64)
	EndEpoch() EpochStats
}

// WallClock is the Meter that needs nothing from the system: wall time per epoch and phase,
// tokens per second and GFLOP/s.
type WallClock struct {
	start  time.Time
	begun  [numPhases]time.Time
	phase  [numPhases]time.Duration
	tokens int64
	flops  float64
}

// StartEpoch implements Meter.
func (w *WallClock) StartEpoch(int) {
	*w = WallClock{start: time.Now()}
}

// Begin implements Meter.
func (w *WallClock) Begin(p Phase) { w.begun[p] = time.Now() }

// End implements Meter.
func (w *WallClock) End(p Phase) { w.phase[p] += time.Since(w.begun[p]) }

// Add implements Meter.
func (w *WallClock) Add(p Phase, d time.Duration) { w.phase[p] += d }

// AddWork implements Meter.
func (w *WallClock) AddWork(tokens int, flops float64) {
	w.tokens += int64(tokens)
	w.flops += flops
}

// EndEpoch implements Meter.
func (w *WallClock) EndEpoch() EpochStats {
	s := EpochStats{Seconds: time.Since(w.start).Seconds(), PhaseSeconds: map[string]float64{}, Tokens: w.tokens}
	var train time.Duration
	for _, p := range Phases() {
		s.PhaseSeconds[p.String()] = w.phase[p].Seconds()
		if p != PhaseValid {
			train += w.phase[p]
		}
	}
	if train > 0 {
		s.TokensPerSecond = float64(w.tokens) / train.Seconds()
		s.GFLOPS = w.flops / train.Seconds() / 1e9
	}
	return s
}
