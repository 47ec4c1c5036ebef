package distill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/train"
)

// TestDistillTakesTheRunLock: a distillation into a run directory that another holder has
// locked is refused with an error naming the holder (two distillations into one directory used
// to both train); once the lock is free, the distillation runs.
func TestDistillTakesTheRunLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "student")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	held, err := train.LockRun(dir) // an flock is per open file: this excludes Run below as another process would
	if err != nil {
		t.Fatal(err)
	}
	cfg := smallDistill(t, dir)
	_, err = Run(context.Background(), cfg, quietHooks())
	if !errors.Is(err, train.ErrRunLocked) || !strings.Contains(err.Error(), fmt.Sprintf("PID %d", os.Getpid())) {
		t.Fatalf("got %v, want ErrRunLocked naming PID %d", err, os.Getpid())
	}
	if _, err := os.Stat(filepath.Join(dir, SettingsFile)); err == nil {
		t.Fatal("the refused distillation wrote its settings")
	}
	held.Unlock()
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatalf("after the lock was released: %v", err)
	}
}
