package train

import (
	"fmt"
	"runtime"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/nn"
)

// newDevice returns the device a run computes on.
func newDevice(cfg Config) (*nn.CPU, error) {
	switch cfg.Device {
	case "", "cpu":
	case "cuda", "gpu":
		return nil, fmt.Errorf("train: device %q: this build of sentibench has no CUDA support (build it with `make gpu`)", cfg.Device)
	default:
		return nil, fmt.Errorf("train: unknown device %q (want cpu or cuda)", cfg.Device)
	}
	impl, err := blas.Load(cfg.BLAS)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	threads := cfg.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	impl.SetThreads(threads)
	return nn.NewCPU(impl, threads), nil
}
