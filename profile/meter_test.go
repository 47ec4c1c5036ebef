package profile

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/sentibench/sentibench/train"
)

// The Meter must satisfy the trainer's interface.
var _ train.Meter = (*Meter)(nil)

const mib = 1 << 20

// touch allocates n bytes on the Go heap and writes every page, so that all of it is resident.
func touch(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		b[i] = 1
	}
	return b
}

// release makes the garbage collector free everything unreachable and hand it back to the OS.
func release() {
	runtime.GC()
	debug.FreeOSMemory()
}

func TestMeterPeakHeapIsPerEpoch(t *testing.T) {
	release()
	m := NewMeter(WithSampleInterval(0)) // phase-end samples alone must see it
	const size = 200 * mib

	m.StartEpoch(1)
	m.Begin(train.PhaseBackward)
	buf := touch(size)
	m.End(train.PhaseBackward)
	s1 := m.EndEpoch()
	runtime.KeepAlive(buf)
	buf = nil
	release()

	m.StartEpoch(2)
	m.Begin(train.PhaseBackward)
	m.End(train.PhaseBackward)
	s2 := m.EndEpoch()

	t.Logf("heap peak: epoch 1 %.1f MiB, epoch 2 %.1f MiB", s1.PeakHeapMiB, s2.PeakHeapMiB)
	if s1.PeakHeapMiB < size/mib {
		t.Errorf("epoch 1 heap peak %.1f MiB, want at least %d MiB", s1.PeakHeapMiB, size/mib)
	}
	if s1.PeakHeapMiB-s2.PeakHeapMiB < 0.95*size/mib {
		t.Errorf("epoch 2 heap peak %.1f MiB still holds epoch 1's %d MiB (epoch 1: %.1f MiB)", s2.PeakHeapMiB, size/mib, s1.PeakHeapMiB)
	}
}

// A peak that is gone by the end of its phase is seen by the sampler only.
func TestMeterHeapSamplerSeesTransientPeak(t *testing.T) {
	const size = 100 * mib
	transient := func(m *Meter) float64 {
		release()
		m.StartEpoch(1)
		m.Begin(train.PhaseForward)
		buf := touch(size)
		time.Sleep(60 * time.Millisecond) // several sampler periods
		runtime.KeepAlive(buf)
		buf = nil
		runtime.GC() // freed before the phase ends
		m.End(train.PhaseForward)
		return m.EndEpoch().PeakHeapMiB
	}
	with := transient(NewMeter(WithSampleInterval(2 * time.Millisecond)))
	without := transient(NewMeter(WithSampleInterval(0)))
	t.Logf("transient %d MiB: heap peak with sampler %.1f MiB, without %.1f MiB", size/mib, with, without)
	if with < size/mib {
		t.Errorf("with the sampler the heap peak is %.1f MiB, want at least %d MiB", with, size/mib)
	}
	if without >= size/mib {
		t.Errorf("without the sampler the heap peak is %.1f MiB: the phase-end sample saw a freed buffer?", without)
	}
}

// fakeGPU is a device allocator in miniature: it counts what it holds and its high-water mark.
type fakeGPU struct {
	held, peak, total int64
	resets            int
}

func (g *fakeGPU) alloc(n int64) {
	g.held += n
	g.peak = max(g.peak, g.held)
}
func (g *fakeGPU) free(n int64)     { g.held -= n }
func (g *fakeGPU) ResetPeak()       { g.peak = g.held; g.resets++ }
func (g *fakeGPU) PeakBytes() int64 { return g.peak }
func (g *fakeGPU) Info() (int64, int64, error) {
	return g.total - g.held - 500*mib, g.total, nil // the driver sees more than our allocator
}

func TestMeterDeviceMemory(t *testing.T) {
	g := &fakeGPU{total: 80 << 30}
	m := NewMeter(WithDevice(g), WithSampleInterval(0))
	g.alloc(100 * mib) // weights, held across epochs
	g.alloc(900 * mib) // a previous epoch's peak
	g.free(900 * mib)

	m.StartEpoch(1)
	g.alloc(300 * mib)
	g.free(300 * mib)
	s := m.EndEpoch()
	if g.resets != 1 {
		t.Errorf("ResetPeak called %d times, want 1", g.resets)
	}
	if s.PeakGPUMiB != 400 {
		t.Errorf("PeakGPUMiB %v, want 400", s.PeakGPUMiB)
	}
	if s.GPUUsedMiB != 600 || s.GPUTotalMiB != 80<<10 {
		t.Errorf("GPU used/total %v/%v MiB, want 600/%d", s.GPUUsedMiB, s.GPUTotalMiB, 80<<10)
	}

	cpu := NewMeter(WithSampleInterval(0))
	cpu.StartEpoch(1)
	if s := cpu.EndEpoch(); s.PeakGPUMiB != 0 || s.GPUTotalMiB != 0 {
		t.Errorf("no device, yet GPU figures %v/%v", s.PeakGPUMiB, s.GPUTotalMiB)
	}
}

// TestMeterUseDevice checks the device handed over by a GPU run (train.DeviceMeter).
func TestMeterUseDevice(t *testing.T) {
	g := &fakeGPU{total: 80 << 30}
	var dm train.DeviceMeter = NewMeter(WithSampleInterval(0))
	dm.UseDevice(g)
	dm.StartEpoch(1)
	g.alloc(250 * mib)
	s := dm.EndEpoch()
	if g.resets != 1 || s.PeakGPUMiB != 250 || s.GPUTotalMiB != 80<<10 {
		t.Fatalf("resets %d, PeakGPUMiB %v, GPUTotalMiB %v", g.resets, s.PeakGPUMiB, s.GPUTotalMiB)
	}
}

func TestMeterTimesAndWork(t *testing.T) {
	m := NewMeter()
	defer m.Close()
	m.StartEpoch(1)
	for i := 0; i < 3; i++ {
		m.Begin(train.PhaseData)
		m.End(train.PhaseData)
		m.Begin(train.PhaseForward)
		time.Sleep(5 * time.Millisecond)
		m.End(train.PhaseForward)
		m.AddWork(1000, 2e9)
	}
	m.Begin(train.PhaseValid)
	time.Sleep(5 * time.Millisecond)
	m.End(train.PhaseValid)
	s := m.EndEpoch()

	fwd, valid := s.PhaseSeconds["forward"], s.PhaseSeconds["valid"]
	if fwd < 0.015 || valid < 0.005 {
		t.Errorf("forward %.4f s, valid %.4f s; want at least 0.015 and 0.005", fwd, valid)
	}
	var sum, train float64
	for _, p := range []string{"data", "forward", "backward", "optimizer", "valid"} {
		v, ok := s.PhaseSeconds[p]
		if !ok {
			t.Errorf("phase %q missing from %v", p, s.PhaseSeconds)
		}
		sum += v
		if p != "valid" {
			train += v
		}
	}
	if s.Seconds < sum {
		t.Errorf("epoch %.4f s shorter than its phases (%.4f s)", s.Seconds, sum)
	}
	if s.Tokens != 3000 {
		t.Errorf("Tokens %d, want 3000", s.Tokens)
	}
	if want := 3000 / train; s.TokensPerSecond < 0.99*want || s.TokensPerSecond > 1.01*want {
		t.Errorf("TokensPerSecond %.0f, want %.0f", s.TokensPerSecond, want)
	}
	if want := 6e9 / train / 1e9; s.GFLOPS < 0.99*want || s.GFLOPS > 1.01*want {
		t.Errorf("GFLOPS %.1f, want %.1f", s.GFLOPS, want)
	}
	if s.PeakHeapMiB <= 0 {
		t.Errorf("PeakHeapMiB %v, want > 0", s.PeakHeapMiB)
	}
}

// The sampler goroutine lives from StartEpoch to EndEpoch (or Close) and no longer.
func TestMeterNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	m := NewMeter(WithSampleInterval(time.Millisecond))
	for e := 1; e <= 3; e++ {
		m.StartEpoch(e)
		if e == 1 && runtime.NumGoroutine() != before+1 {
			t.Errorf("during an epoch: %d goroutines, want %d", runtime.NumGoroutine(), before+1)
		}
		m.EndEpoch()
	}
	m.StartEpoch(4)
	m.StartEpoch(5) // epoch 4 left open: StartEpoch closes it
	m.Close()       // epoch 5 abandoned (say the run was cancelled)
	m.Close()
	// A sampler marks itself done just before it returns: give it a moment to be gone.
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(time.Second); n != before && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(time.Millisecond)
	}
	if n != before {
		t.Errorf("%d goroutines after the epochs, want %d", n, before)
	}
}
