package gpu

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
)

// The device allocator: a caching pool over the driver's allocations, with a high-water mark.
//
// Every buffer of a training step (activations, gradients, the step's upload) is taken from the
// pool at the start of the step and given back at its end. A block given back is kept, by size
// class, for the next request of its class, so a steady run reaches the driver only while the
// batches keep growing. Blocks are reused on the one stream every step runs on, so a block given
// back while kernels may still read it is only handed to work queued after them.
//
// Sizes are rounded up to a class: 4 classes per power of two (2^k * 1.25, 1.5, 1.75, 2), at
// least 512 bytes, so a block is at most 25% larger than asked and batches of similar shapes
// share blocks. When the driver has no memory left, the pool frees every cached block and tries
// once more.

// allocator is what the pool needs from the driver (cuMemAlloc/cuMemFree on a GPU).
type allocator interface {
	alloc(bytes int64) (uintptr, error)
	free(ptr uintptr) error
}

// errOutOfMemory is what an allocator returns when the device is full (the pool then empties
// its cache and retries once).
var errOutOfMemory = errors.New("out of device memory")

// minClass is the smallest block the pool hands out.
const minClass = 512

// sizeClass returns the block size for a request of n bytes (n >= 1).
func sizeClass(n int64) int64 {
	if n <= minClass {
		return minClass
	}
	k := 63 - bits.LeadingZeros64(uint64(n-1)) // 2^k < n <= 2^(k+1)
	step := int64(1) << (k - 2)
	return (n + step - 1) / step * step
}

// Pool is the device allocator. Its methods may be called from several goroutines.
type Pool struct {
	mu       sync.Mutex
	be       allocator
	cache    map[int64][]uintptr // free blocks by class
	live     map[uintptr]int64   // blocks handed out, with their class
	inUse    int64               // bytes handed out (by class)
	peak     int64               // most inUse since the last ResetPeak
	reserved int64               // bytes held from the driver (handed out + cached)
}

func newPool(be allocator) *Pool {
	return &Pool{be: be, cache: map[int64][]uintptr{}, live: map[uintptr]int64{}}
}

// alloc returns a block of at least n bytes.
func (p *Pool) alloc(n int64) (uintptr, error) {
	if n < 1 {
		return 0, fmt.Errorf("gpu: allocating %d bytes", n)
	}
	c := sizeClass(n)
	p.mu.Lock()
	defer p.mu.Unlock()
	var ptr uintptr
	if free := p.cache[c]; len(free) > 0 {
		ptr = free[len(free)-1]
		p.cache[c] = free[:len(free)-1]
	} else {
		var err error
		ptr, err = p.be.alloc(c)
		if errors.Is(err, errOutOfMemory) {
			if err := p.releaseLocked(); err != nil {
				return 0, err
			}
			ptr, err = p.be.alloc(c)
		}
		if err != nil {
			return 0, fmt.Errorf("gpu: allocating %d bytes (%d in use, %d held): %w", c, p.inUse, p.reserved, err)
		}
		p.reserved += c
	}
	p.live[ptr] = c
	p.inUse += c
	p.peak = max(p.peak, p.inUse)
	return ptr, nil
}

// free gives a block back to the pool (not to the driver).
func (p *Pool) free(ptr uintptr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.live[ptr]
	if !ok {
		return fmt.Errorf("gpu: freeing %#x, which the pool did not hand out", ptr)
	}
	delete(p.live, ptr)
	p.inUse -= c
	p.cache[c] = append(p.cache[c], ptr)
	return nil
}

// Release gives every cached block back to the driver.
func (p *Pool) Release() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.releaseLocked()
}

func (p *Pool) releaseLocked() error {
	var first error
	for c, free := range p.cache {
		for _, ptr := range free {
			if err := p.be.free(ptr); err != nil && first == nil {
				first = err
			}
			p.reserved -= c
		}
		delete(p.cache, c)
	}
	return first
}

// ResetPeak sets the high-water mark to the bytes in use now.
func (p *Pool) ResetPeak() {
	p.mu.Lock()
	p.peak = p.inUse
	p.mu.Unlock()
}

// PeakBytes is the most the pool had handed out at once since the last ResetPeak (as PyTorch's
// max_memory_allocated: the buffers' sizes, rounded to their classes; not the cache).
func (p *Pool) PeakBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// InUse is the bytes handed out now; Reserved the bytes held from the driver (handed out or
// cached).
func (p *Pool) InUse() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse
}

// Reserved is the bytes the pool holds from the driver, in use or cached.
func (p *Pool) Reserved() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reserved
}
