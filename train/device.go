package train

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/gpu"
)

// newDevice returns the host device: the CPU a run builds its model on, and computes on unless
// it runs on a GPU (see openGPU).
func newDevice(cfg Config) (*nn.CPU, error) {
	if _, _, err := gpuOrdinal(cfg.Device); err != nil {
		return nil, err
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

// gpuOrdinal reads a device name: "cpu" (or "") is the CPU; "cuda", "gpu" and "cuda:N" a GPU.
func gpuOrdinal(device string) (ordinal int, isGPU bool, err error) {
	switch d := strings.ToLower(device); {
	case d == "" || d == "cpu":
		return 0, false, nil
	case d == "cuda" || d == "gpu":
		return 0, true, nil
	case strings.HasPrefix(d, "cuda:"):
		n, err := strconv.Atoi(d[len("cuda:"):])
		if err == nil && n >= 0 {
			return n, true, nil
		}
	}
	return 0, false, fmt.Errorf("train: unknown device %q (want cpu, cuda or cuda:N)", device)
}

// openGPU opens the run's GPU, or returns nil for a CPU run. A build without CUDA says so.
func openGPU(cfg Config) (*gpu.Device, error) { return OpenGPU(cfg.Device) }

// OpenGPU opens the GPU a device name names ("cuda", "gpu", "cuda:N"), or returns nil for "cpu"
// and "". A build without CUDA says so.
func OpenGPU(device string) (*gpu.Device, error) {
	n, isGPU, err := gpuOrdinal(device)
	if err != nil || !isGPU {
		return nil, err
	}
	d, err := gpu.Open(n)
	if err != nil {
		return nil, fmt.Errorf("train: device %q: %w", device, err)
	}
	return d, nil
}

// engine runs a run's steps on its device: nn's ops on the CPU, or a gpu.Trainer.
type engine interface {
	// Step runs one batch (nn.Runner.Step's contract).
	Step(in *nn.Input, loss nn.Loss, mode nn.Mode, rng *nn.RNG) (nn.StepResult, error)
	// Update runs the optimiser on the last training step's gradients.
	Update() error
	// Push copies the model's weights and the optimiser's state from the host to the device;
	// Pull copies them back (before a checkpoint).
	Push() error
	Pull() error
	// Name describes the device.
	Name() string
	Close() error
}

// gradAnnouncer is an engine that can announce each gradient of a training step as soon as the
// backward pass has computed it (nn.Runner.OnGrad): the CPU engine. f nil stops announcing.
type gradAnnouncer interface {
	announceGrads(f func(p *nn.Param))
}

// cpuEngine computes with nn's ops; the weights never leave the host.
type cpuEngine struct {
	m      nn.Model
	opt    *nn.Adam
	runner *nn.Runner
	dev    *nn.CPU
}

func (e *cpuEngine) Step(in *nn.Input, loss nn.Loss, mode nn.Mode, rng *nn.RNG) (nn.StepResult, error) {
	return e.runner.Step(e.m, in, loss, mode, rng)
}
func (e *cpuEngine) Update() error                     { return e.opt.Step(e.m.Params()) }
func (e *cpuEngine) announceGrads(f func(p *nn.Param)) { e.runner.OnGrad = f }
func (e *cpuEngine) Push() error                       { return nil }
func (e *cpuEngine) Pull() error                       { return nil }
func (e *cpuEngine) Close() error                      { return nil }
func (e *cpuEngine) Name() string {
	if e.dev == nil {
		return "cpu"
	}
	return e.dev.Name()
}

// gpuEngine keeps the weights, gradients and optimiser state on a GPU.
type gpuEngine struct {
	dev *gpu.Device
	tr  *gpu.Trainer
	opt *nn.Adam
}

func newGPUEngine(dev *gpu.Device, m nn.Model, opt *nn.Adam) (*gpuEngine, error) {
	tr, err := gpu.NewTrainer(dev, m, opt.Config())
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return &gpuEngine{dev: dev, tr: tr, opt: opt}, nil
}

func (e *gpuEngine) Step(in *nn.Input, loss nn.Loss, mode nn.Mode, rng *nn.RNG) (nn.StepResult, error) {
	return e.tr.Step(in, loss, mode, rng)
}
func (e *gpuEngine) Update() error { return e.tr.Update() }
func (e *gpuEngine) Push() error   { return e.tr.Push(e.opt) }
func (e *gpuEngine) Pull() error   { return e.tr.Pull(e.opt) }
func (e *gpuEngine) Name() string  { return e.dev.Name() }
func (e *gpuEngine) Close() error {
	err := e.tr.Close()
	if err2 := e.dev.Close(); err == nil {
		err = err2
	}
	return err
}

// DeviceMemory is a GPU's memory as a Meter reports it (package profile's meter does): the
// high-water mark of the device allocator, and the driver's free and total memory.
type DeviceMemory interface {
	ResetPeak()
	PeakBytes() int64
	Info() (free, total int64, err error)
}

// DeviceMeter is a Meter that reports a device's memory: a run on a GPU hands it the device.
type DeviceMeter interface {
	Meter
	UseDevice(DeviceMemory)
}
