package profile

import (
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentibench/sentibench/train"
)

// DeviceMemory is what the meter needs from a GPU: the high-water mark of the project's own
// device allocator, and the driver's view of the card (ResetPeak, PeakBytes, Info: see
// train.DeviceMemory). The CUDA device of package nn/gpu implements it; on the CPU there is none.
type DeviceMemory = train.DeviceMemory

// DefaultSampleInterval is how often the heap sampler reads the Go heap between phase
// boundaries. A read costs about 0.3 us (BenchmarkHeapSample), but waking the sampler costs the
// process 150-200 us of CPU on an otherwise idle virtual machine (BenchmarkSamplerCPU): at 50 ms
// that is about 0.3% of one core, at 10 ms about 1.5%.
const DefaultSampleInterval = 50 * time.Millisecond

// Option configures a Meter.
type Option func(*Meter)

// WithDevice makes the meter report the device memory of d (peak and the driver's used/total).
func WithDevice(d DeviceMemory) Option { return func(m *Meter) { m.dev = d } }

var _ train.DeviceMeter = (*Meter)(nil)

// UseDevice makes the meter report the device memory of d from the next epoch on: a run on a
// GPU hands its device to the meter (train.DeviceMeter).
func (m *Meter) UseDevice(d DeviceMemory) { m.dev = d }

// WithSampleInterval sets the heap sampler's period; 0 turns the sampler off, leaving the
// samples taken at phase boundaries.
func WithSampleInterval(d time.Duration) Option { return func(m *Meter) { m.interval = d } }

// Meter is the full train.Meter: everything train.WallClock measures (wall time per epoch and
// phase, tokens/s, GFLOP/s), plus per epoch the process's peak resident memory, the Go heap's
// peak and, given WithDevice, the device memory peak and the driver's used and total memory.
//
// Peak RSS: at StartEpoch the meter writes "5" to /proc/self/clear_refs, which resets the
// kernel's high-water mark (VmHWM) to the current RSS; EndEpoch reads VmHWM from
// /proc/self/status, so the figure is this epoch's alone (PeakRSSMethod "vmhwm"). Where
// clear_refs cannot be written, it falls back to getrusage's ru_maxrss, the whole process's
// peak so far (PeakRSSMethod "ru_maxrss").
//
// Go heap peak: the most of "/memory/classes/heap/objects:bytes" (live and not yet swept
// objects) seen at each phase's end and by a sampler goroutine that runs from StartEpoch to
// EndEpoch. A peak between two samples can be missed; the figure is a lower bound.
//
// The trainer calls the methods from one goroutine. Call Close when a run stops between
// StartEpoch and EndEpoch (an error, a cancelled context): it stops the sampler.
type Meter struct {
	wall     train.WallClock
	dev      DeviceMemory
	interval time.Duration
	rss      rssProbe

	sample  []metrics.Sample // the trainer goroutine's own sample buffer
	heapMax atomic.Uint64    // shared with the sampler goroutine
	stop    chan struct{}    // closed to stop the sampler
	done    sync.WaitGroup   // the sampler has returned
	epochOn bool
}

// heapMetric is the runtime/metrics name the heap peak is taken from.
const heapMetric = "/memory/classes/heap/objects:bytes"

// NewMeter returns a Meter with the given options.
func NewMeter(opts ...Option) *Meter {
	m := &Meter{interval: DefaultSampleInterval, rss: newRSSProbe()}
	for _, o := range opts {
		o(m)
	}
	m.sample = []metrics.Sample{{Name: heapMetric}}
	return m
}

// RSSMethod names how the meter measures peak RSS: "vmhwm", "ru_maxrss", or "" where neither
// works (peak RSS then stays zero).
func (m *Meter) RSSMethod() string { return m.rss.method() }

// StartEpoch implements train.Meter.
func (m *Meter) StartEpoch(epoch int) {
	m.Close() // an epoch left open (no EndEpoch) ends here
	m.rss.reset()
	if m.dev != nil {
		m.dev.ResetPeak()
	}
	m.heapMax.Store(0)
	m.sampleHeap()
	if m.interval > 0 {
		m.stop = make(chan struct{})
		m.done.Add(1)
		go m.sampler(m.stop, m.interval)
	}
	m.epochOn = true
	m.wall.StartEpoch(epoch)
}

// Begin implements train.Meter.
func (m *Meter) Begin(p train.Phase) { m.wall.Begin(p) }

// End implements train.Meter. It also samples the Go heap.
func (m *Meter) End(p train.Phase) {
	m.wall.End(p)
	m.sampleHeap()
}

// Add implements train.Meter: a phase's time measured elsewhere (the step runner times the
// forward and backward passes itself).
func (m *Meter) Add(p train.Phase, d time.Duration) {
	m.wall.Add(p, d)
	m.sampleHeap()
}

// AddWork implements train.Meter.
func (m *Meter) AddWork(tokens int, flops float64) { m.wall.AddWork(tokens, flops) }

// EndEpoch implements train.Meter.
func (m *Meter) EndEpoch() train.EpochStats {
	s := m.wall.EndEpoch()
	m.sampleHeap()
	m.Close()
	const mib = 1 << 20
	s.PeakHeapMiB = float64(m.heapMax.Load()) / mib
	if b, ok := m.rss.peak(); ok {
		s.PeakRSSMiB = float64(b) / mib
		s.PeakRSSMethod = m.rss.method()
	}
	if m.dev != nil {
		s.PeakGPUMiB = float64(m.dev.PeakBytes()) / mib
		if free, total, err := m.dev.Info(); err == nil {
			s.GPUUsedMiB = float64(total-free) / mib
			s.GPUTotalMiB = float64(total) / mib
		}
	}
	return s
}

// Close stops the heap sampler if an epoch is open. It is safe to call at any time, more than
// once; the meter can start a new epoch afterwards.
func (m *Meter) Close() {
	if !m.epochOn {
		return
	}
	m.epochOn = false
	if m.stop != nil {
		close(m.stop)
		m.done.Wait()
		m.stop = nil
	}
}

// sampleHeap reads the heap on the trainer's goroutine and raises the peak.
func (m *Meter) sampleHeap() {
	metrics.Read(m.sample)
	raise(&m.heapMax, heapBytes(m.sample[0]))
}

// sampler reads the heap every interval until stop is closed.
func (m *Meter) sampler(stop <-chan struct{}, interval time.Duration) {
	defer m.done.Done()
	s := []metrics.Sample{{Name: heapMetric}}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			metrics.Read(s)
			raise(&m.heapMax, heapBytes(s[0]))
		}
	}
}

func heapBytes(s metrics.Sample) uint64 {
	if s.Value.Kind() != metrics.KindUint64 {
		return 0 // the metric is unknown to this Go version
	}
	return s.Value.Uint64()
}

// raise sets *a to v if v is larger.
func raise(a *atomic.Uint64, v uint64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}
