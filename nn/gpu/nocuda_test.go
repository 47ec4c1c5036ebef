//go:build !sentibench_cuda

package gpu

import (
	"errors"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/nn"
)

func TestBuiltWithoutCUDA(t *testing.T) {
	d, err := Open(0)
	if d != nil || !errors.Is(err, ErrNoCUDA) || !strings.Contains(err.Error(), "built without") || !strings.Contains(err.Error(), "make gpu") {
		t.Fatalf("Open in a build without CUDA: %v, %v", d, err)
	}
	if _, err := NewTrainer(nil, nil, nn.AdamConfig{}); !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("NewTrainer: %v", err)
	}
}
