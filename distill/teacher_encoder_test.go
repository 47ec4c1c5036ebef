package distill

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
	"github.com/sentibench/sentibench/train"
)

// TestTeacherEncoderMoved (issue 21): a bigru teacher whose encoder directory has moved since it
// was trained is refused before any work, by Run and by Resume: an error naming the directory,
// no student run directory made, the teacher never loaded, no logits computed.
func TestTeacherEncoderMoved(t *testing.T) {
	enc := testutil.CopyDir(t, testutil.Shared(t, "models/bert-uncased-random-L2-H32"))
	t.Setenv("SENTIBENCH_CACHE", t.TempDir())
	tc := smallConfig("bigru")
	tc.Encoder, tc.Epochs, tc.Limit = enc, 1, 30
	tc.RunDir = filepath.Join(t.TempDir(), "bigru")
	if _, err := train.Run(context.Background(), tc, quietHooks().Hooks); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(enc, enc+"-moved"); err != nil {
		t.Fatal(err)
	}
	hooks := quietHooks()
	hooks.OpenTeacher = func(string, train.LoadOptions) (Teacher, error) {
		t.Error("the teacher was loaded")
		return nil, errors.New("no teacher")
	}
	want := "distill: teacher run: train: " + tc.RunDir + ": the run's encoder " + enc + " does not exist: was it moved"

	cfg := smallDistill(t, filepath.Join(t.TempDir(), "student"))
	cfg.Teacher = tc.RunDir
	cfg.Student.Limit, cfg.Student.Epochs = 30, 1
	if _, err := Run(context.Background(), cfg, hooks); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Run: %v\nwant %q", err, want)
	}
	if _, err := os.Stat(cfg.RunDir); err == nil {
		t.Errorf("the refused distillation made %s", cfg.RunDir)
	}

	// A distillation begun while the encoder was in place, resumed after it moved.
	dir := t.TempDir()
	cfg.RunDir = dir
	if err := writeSettings(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := Resume(context.Background(), dir, hooks); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Resume: %v\nwant %q", err, want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the refused resume left %d files in %s, want %s alone", len(entries), dir, SettingsFile)
	}
}
