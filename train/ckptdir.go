package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sentibench/sentibench/internal/atomicfile"
)

// A checkpoint is a directory of files (weights, optimiser state, trainer state) that must change
// together. writeCheckpointDir replaces one as a whole: the new files go to NAME.new, then NAME
// becomes NAME.old, NAME.new becomes NAME, and NAME.old is removed. A process killed at any
// moment leaves either NAME or NAME.old complete, and openCheckpointDir finds it.

// writeCheckpointDir writes files (name -> contents) as the checkpoint directory dir/name.
// When a file cannot be written (a full disk), it removes the NAME.new it began and leaves the
// checkpoint as it was.
func writeCheckpointDir(dir, name string, files map[string][]byte) error {
	final := filepath.Join(dir, name)
	tmp, old := final+".new", final+".old"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("checkpoint %s: %w", final, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("checkpoint %s: %w", final, err)
	}
	for fname, data := range files {
		if err := atomicfile.WriteFile(filepath.Join(tmp, fname), data); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("checkpoint %s: %w", final, err)
		}
	}
	// A complete NAME.old and no NAME means an earlier swap was cut short: NAME.old is the
	// checkpoint, keep it until the new one is in place.
	if _, err := os.Stat(final); err == nil {
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("checkpoint %s: %w", final, err)
		}
		if err := os.Rename(final, old); err != nil {
			return fmt.Errorf("checkpoint %s: %w", final, err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp) // NAME.old, if there is one, is still the checkpoint
		return fmt.Errorf("checkpoint %s: %w", final, err)
	}
	syncDir(dir)
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("checkpoint %s: removing the previous one: %w", final, err)
	}
	return nil
}

// errNoCheckpoint is returned when a run directory has no checkpoint of that name.
var errNoCheckpoint = errors.New("no checkpoint")

// openCheckpointDir returns the path of the complete checkpoint dir/name, recovering from a
// swap that a killed process left half done.
func openCheckpointDir(dir, name string) (string, error) {
	final := filepath.Join(dir, name)
	if st, err := os.Stat(final); err == nil && st.IsDir() {
		return final, nil
	}
	if st, err := os.Stat(final + ".old"); err == nil && st.IsDir() {
		return final + ".old", nil
	}
	return "", fmt.Errorf("%s: %w", final, errNoCheckpoint)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
