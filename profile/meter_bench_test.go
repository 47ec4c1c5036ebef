//go:build unix

package profile

import (
	"runtime/metrics"
	"syscall"
	"testing"
	"time"

	"github.com/sentibench/sentibench/train"
)

// step makes the meter calls of one training step, as the trainer does.
func step(m train.Meter) {
	for _, p := range [...]train.Phase{train.PhaseData, train.PhaseForward, train.PhaseBackward, train.PhaseOptimizer} {
		m.Begin(p)
		m.End(p)
	}
	m.AddWork(64*230, 1e9)
}

// reportOverhead reports the per-step cost as a share of a short (20 ms) and a long (2 s) step.
func reportOverhead(b *testing.B) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns/20e6*100, "%of20ms")
	b.ReportMetric(ns/2e9*100, "%of2s")
}

// BenchmarkMeterStep is the Meter's cost per training step: four phases timed and a heap
// sample at each phase's end, and AddWork.
func BenchmarkMeterStep(b *testing.B) {
	m := NewMeter()
	m.StartEpoch(1)
	defer m.Close()
	for b.Loop() {
		step(m)
	}
	reportOverhead(b)
}

// BenchmarkWallClockStep is the same for train.WallClock, the meter without memory figures.
func BenchmarkWallClockStep(b *testing.B) {
	var m train.WallClock
	m.StartEpoch(1)
	for b.Loop() {
		step(&m)
	}
	reportOverhead(b)
}

// BenchmarkHeapSample is one read of the Go heap, what the sampler does each period; the
// sampler's share of the time is that cost over DefaultSampleInterval.
func BenchmarkHeapSample(b *testing.B) {
	s := []metrics.Sample{{Name: heapMetric}}
	for b.Loop() {
		metrics.Read(s)
	}
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns/float64(DefaultSampleInterval.Nanoseconds())*100, "%sampler")
}

// BenchmarkSamplerCPU measures the sampler goroutine as a whole (ticker wake-ups included): the
// process's CPU time during a 500 ms epoch in which the trainer's goroutine only sleeps, as a
// share of the epoch's wall time. sampler=off is the same epoch without it: the idle process's
// own cost, to subtract.
func BenchmarkSamplerCPU(b *testing.B) {
	for _, c := range []struct {
		name     string
		interval time.Duration
	}{{"sampler=off", 0}, {"sampler=10ms", 10 * time.Millisecond}, {"sampler=50ms(default)", DefaultSampleInterval}} {
		b.Run(c.name, func(b *testing.B) {
			m := NewMeter(WithSampleInterval(c.interval))
			var cpu, wall time.Duration
			for b.Loop() {
				c0 := cpuTime()
				t0 := time.Now()
				m.StartEpoch(1)
				time.Sleep(500 * time.Millisecond)
				m.EndEpoch()
				wall += time.Since(t0)
				cpu += cpuTime() - c0
			}
			b.ReportMetric(float64(cpu)/float64(wall)*100, "%cpu")
		})
	}
}

// BenchmarkEpochBoundary is StartEpoch plus EndEpoch: the RSS reset and read, the sampler's
// start and stop. It happens once per epoch (minutes), so microseconds do not matter.
func BenchmarkEpochBoundary(b *testing.B) {
	m := NewMeter()
	for b.Loop() {
		m.StartEpoch(1)
		m.EndEpoch()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
