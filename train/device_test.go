package train

import (
	"errors"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/nn/gpu"
)

func TestGPUOrdinal(t *testing.T) {
	for _, c := range []struct {
		in  string
		n   int
		gpu bool
		ok  bool
	}{{"", 0, false, true}, {"cpu", 0, false, true}, {"CUDA", 0, true, true}, {"gpu", 0, true, true},
		{"cuda:1", 1, true, true}, {"cuda:x", 0, false, false}, {"cuda:-1", 0, false, false}, {"tpu", 0, false, false}} {
		n, g, err := gpuOrdinal(c.in)
		if n != c.n || g != c.gpu || (err == nil) != c.ok {
			t.Errorf("gpuOrdinal(%q) = %d, %v, %v", c.in, n, g, err)
		}
	}
}

// TestDeviceErrors: a CPU run opens no GPU; asking for a GPU in a build without CUDA says so
// clearly (with CUDA and no usable GPU, the driver's reason).
func TestDeviceErrors(t *testing.T) {
	if d, err := openGPU(Config{Device: "cpu"}); d != nil || err != nil {
		t.Fatalf("cpu: %v %v", d, err)
	}
	if _, err := newDevice(Config{Device: "quantum"}); err == nil || !strings.Contains(err.Error(), "unknown device") {
		t.Fatalf("unknown device: %v", err)
	}
	d, err := openGPU(Config{Device: "cuda"})
	if err == nil {
		d.Close()
		t.Skip("a GPU is present")
	}
	if !strings.Contains(err.Error(), `device "cuda"`) {
		t.Fatalf("error %q does not name the device", err)
	}
	if errors.Is(err, gpu.ErrNoCUDA) && !strings.Contains(err.Error(), "built without") {
		t.Fatalf("error %q", err)
	}
}
