package train

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNaNStopSaysWhatExists: a run whose loss becomes NaN before its first checkpoint says that
// there is none (it used to point at a last/ that did not exist); one that stops later names
// the checkpoint it leaves, which exists.
func TestNaNStopSaysWhatExists(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs = 2
	cfg.LR = 1e30
	cfg.RunDir = filepath.Join(t.TempDir(), "early")
	_, err := Run(context.Background(), cfg, quietHooks())
	if err == nil || !strings.Contains(err.Error(), "in epoch 1") || !strings.Contains(err.Error(), "no checkpoint was written yet") {
		t.Fatalf("got %v, want a stop in epoch 1 saying that no checkpoint exists", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.RunDir, LastDir)); err == nil {
		t.Fatal("last/ exists, yet the message says there is no checkpoint")
	}

	// A run stopped inside epoch 2 (a checkpoint after epoch 1 and a batch), then resumed at a
	// learning rate that makes the loss NaN.
	cfg.LR = 1e-3
	cfg.RunDir = filepath.Join(t.TempDir(), "later")
	ctx, cancel := context.WithCancel(context.Background())
	hooks := quietHooks()
	hooks.Meter = &cancelAfter{n: 9, cancel: cancel} // epoch 1 has fewer batches
	_, err = Run(ctx, cfg, hooks)
	cancel()
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	info, err := ReadRunInfo(cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	info.Config.LR = 1e30
	b, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(cfg.RunDir, ConfigFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Resume(context.Background(), cfg.RunDir, quietHooks())
	want := " batches of epoch 2, stays in " + filepath.Join(cfg.RunDir, LastDir)
	if err == nil || !strings.Contains(err.Error(), "the last good checkpoint, after epoch 1 and ") || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want it to name the checkpoint after epoch 1 and some batches of epoch 2", err)
	}
	if _, err := openCheckpointDir(cfg.RunDir, LastDir); err != nil {
		t.Fatalf("the message names a checkpoint that is not there: %v", err)
	}
}
