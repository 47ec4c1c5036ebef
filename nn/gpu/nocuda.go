//go:build !sentibench_cuda

package gpu

import "github.com/sentibench/sentibench/nn"

// This file is the package in a build without CUDA: the same API, and Open says why there is
// no device. cuda.go and trainer.go are the real one.

// Device is a CUDA device (see cuda.go); without CUDA there is none.
type Device struct{}

// Open returns ErrNoCUDA: this binary was built without CUDA.
func Open(ordinal int) (*Device, error) { return nil, ErrNoCUDA }

// Name describes the device.
func (d *Device) Name() string { return "no CUDA" }

// Close releases the device.
func (d *Device) Close() error { return nil }

// ResetPeak, PeakBytes and Info implement profile.DeviceMemory.
func (d *Device) ResetPeak() {}

// PeakBytes is the allocator's high-water mark.
func (d *Device) PeakBytes() int64 { return 0 }

// Info is the driver's free and total memory.
func (d *Device) Info() (free, total int64, err error) { return 0, 0, ErrNoCUDA }

// Trainer runs a model on the device (see trainer.go).
type Trainer struct{}

// NewTrainer returns ErrNoCUDA.
func NewTrainer(d *Device, m nn.Model, cfg nn.AdamConfig) (*Trainer, error) { return nil, ErrNoCUDA }

// Step runs one batch.
func (t *Trainer) Step(in *nn.Input, loss nn.Loss, mode nn.Mode, rng *nn.RNG) (nn.StepResult, error) {
	return nn.StepResult{}, ErrNoCUDA
}

// Update runs the optimiser.
func (t *Trainer) Update() error { return ErrNoCUDA }

// Push copies the weights and the optimiser state to the device.
func (t *Trainer) Push(opt *nn.Adam) error { return ErrNoCUDA }

// Pull copies the weights and the optimiser state to the host.
func (t *Trainer) Pull(opt *nn.Adam) error { return ErrNoCUDA }

// Close frees the trainer's device memory.
func (t *Trainer) Close() error { return nil }
