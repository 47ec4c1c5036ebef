package memstat

import (
	"runtime"
	"testing"
)

// TestPeakRSS: the peak is at least what a live 64 MiB block holds.
func TestPeakRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("checked on Linux")
	}
	b := make([]byte, 64<<20)
	for i := range b {
		b[i] = 1
	}
	peak, ok := PeakRSS()
	if !ok || peak < 64<<20 {
		t.Errorf("peak RSS %d (ok %v), want at least 64 MiB", peak, ok)
	}
	runtime.KeepAlive(b)
}
