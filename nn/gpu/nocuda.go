//go:build !sentibench_cuda

package gpu

import (
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/bert"
)

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

// NewTrainer returns ErrNoCUDA.
func NewTrainer(d *Device, m nn.Model, cfg nn.AdamConfig) (*Trainer, error) { return nil, ErrNoCUDA }

// NewEncoder returns ErrNoCUDA.
func NewEncoder(d *Device, m *bert.Model) (*Encoder, error) { return nil, ErrNoCUDA }
