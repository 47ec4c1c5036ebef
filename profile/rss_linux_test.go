//go:build linux

package profile

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/train"
)

func TestMeterPeakRSSIsPerEpoch(t *testing.T) {
	m := NewMeter(WithSampleInterval(0))
	if m.RSSMethod() != "vmhwm" {
		t.Skipf("clear_refs is not writable here (method %q): peak RSS is not per epoch", m.RSSMethod())
	}
	release()
	const size = 200 * mib

	m.StartEpoch(1)
	m.Begin(train.PhaseForward)
	buf := touch(size)
	m.End(train.PhaseForward)
	rssWith := currentRSS(t)
	s1 := m.EndEpoch()
	runtime.KeepAlive(buf)
	buf = nil
	release()
	rssAfter := currentRSS(t)

	m.StartEpoch(2)
	m.Begin(train.PhaseForward)
	small := touch(1 * mib)
	m.End(train.PhaseForward)
	s2 := m.EndEpoch()
	runtime.KeepAlive(small)

	t.Logf("epoch 1 peak %.0f MiB (RSS with the buffer %.0f MiB), epoch 2 peak %.0f MiB (RSS after release %.0f MiB)",
		s1.PeakRSSMiB, rssWith, s2.PeakRSSMiB, rssAfter)
	if s1.PeakRSSMethod != "vmhwm" || s2.PeakRSSMethod != "vmhwm" {
		t.Fatalf("methods %q, %q, want vmhwm", s1.PeakRSSMethod, s2.PeakRSSMethod)
	}
	if s1.PeakRSSMiB < rssWith-1 {
		t.Errorf("epoch 1 peak %.0f MiB is below the RSS seen during the epoch (%.0f MiB)", s1.PeakRSSMiB, rssWith)
	}
	if rssWith-rssAfter < 0.9*size/mib {
		t.Fatalf("releasing the buffer took RSS from %.0f to %.0f MiB only: the test cannot tell epochs apart", rssWith, rssAfter)
	}
	// The 200 MiB is in epoch 1's figure and not in epoch 2's, within 10%.
	if got := s1.PeakRSSMiB - s2.PeakRSSMiB; got < 0.9*size/mib || got > 1.1*size/mib+16 {
		t.Errorf("epoch 1 peak - epoch 2 peak = %.0f MiB, want about %d MiB", got, size/mib)
	}
	if s2.PeakRSSMiB > rssAfter+16 {
		t.Errorf("epoch 2 peak %.0f MiB, but RSS at its start was %.0f MiB and it allocated 1 MiB", s2.PeakRSSMiB, rssAfter)
	}
}

func TestMeterRusageFallback(t *testing.T) {
	m := NewMeter(WithSampleInterval(0))
	m.rss = newRSSProbeAt(t.TempDir()) // no clear_refs there
	if got := m.RSSMethod(); got != "ru_maxrss" {
		t.Fatalf("method %q, want ru_maxrss", got)
	}
	m.StartEpoch(1)
	s := m.EndEpoch()
	if s.PeakRSSMethod != "ru_maxrss" {
		t.Errorf("PeakRSSMethod %q, want ru_maxrss", s.PeakRSSMethod)
	}
	if rss := currentRSS(t); s.PeakRSSMiB < rss-1 {
		t.Errorf("ru_maxrss peak %.0f MiB is below the current RSS %.0f MiB", s.PeakRSSMiB, rss)
	}
}

func TestReadVmHWM(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := readVmHWM(write("ok", "Name:\tx\nVmPeak:\t  99 kB\nVmHWM:\t   13484 kB\nVmRSS:\t 1 kB\n"))
	if err != nil || got != 13484<<10 {
		t.Errorf("readVmHWM = %d, %v; want %d", got, err, 13484<<10)
	}
	for name, text := range map[string]string{
		"none":  "Name:\tx\nVmRSS:\t 1 kB\n",
		"units": "VmHWM:\t 12 MB\n",
		"num":   "VmHWM:\t 1x2 kB\n",
	} {
		if _, err := readVmHWM(write(name, text)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want an error naming the file", name, err)
		}
	}
}

// currentRSS reads VmRSS in MiB.
func currentRSS(t *testing.T) float64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			if _, err := fmt.Sscan(rest, &kb); err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS line")
	return 0
}
