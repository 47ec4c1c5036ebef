package train

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/bert"
)

// CheckEncoder makes sure, before any work, that the frozen encoder of a bigru run (info, read
// from run directory dir) is where the run's config.json says: a model directory with its
// config.json and weights, of the hidden size the run's model was trained on. A hub id that is
// not in the model cache yet is fetched, as loading the run would. It loads no weights. A word
// model's run has no encoder: nil.
//
// A run records its encoder as it was given to train, so a directory that has moved since, or
// a relative path read from another working directory, is an error naming the path.
func CheckEncoder(ctx context.Context, dir string, info RunInfo) error {
	if info.Model.Kind != nn.KindBiGRU {
		return nil
	}
	name := info.Config.Encoder
	gone := func(problem string) error {
		where := ""
		if !filepath.IsAbs(name) {
			wd, _ := os.Getwd()
			where = fmt.Sprintf(" (a relative path, read from the current directory %s)", wd)
		}
		return fmt.Errorf("train: %s: the run's encoder %s%s %s: was it moved or deleted since the run was trained? The run needs that encoder (its %s names it): put the directory back, or a link to it",
			dir, name, where, problem, ConfigFile)
	}
	local := name
	st, err := os.Stat(name)
	switch {
	case err == nil && !st.IsDir():
		return gone("is a file, not a model directory")
	case err == nil:
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("train: %s: the run's encoder: %w", dir, err)
	case filepath.IsAbs(name) || strings.HasPrefix(name, ".") || strings.Count(filepath.ToSlash(name), "/") > 1:
		return gone("does not exist") // a path, not a hub id
	default: // a hub id (owner/name), or a relative directory that is not here
		if local, err = bert.Resolve(ctx, name, bert.ResolveOptions{}); err != nil {
			return gone(fmt.Sprintf("is not a directory here, nor a hub model that could be fetched (%v)", err))
		}
	}
	cfg, err := bert.ReadConfig(filepath.Join(local, "config.json"))
	if err != nil {
		return gone(fmt.Sprintf("is no model directory (%v)", err))
	}
	weights := false
	for _, f := range []string{"model.safetensors", "pytorch_model.bin"} {
		if _, err := os.Stat(filepath.Join(local, f)); err == nil {
			weights = true
		}
	}
	if !weights {
		return gone("has no weights (model.safetensors or pytorch_model.bin)")
	}
	if cfg.Hidden != info.Model.InputDim {
		return fmt.Errorf("train: %s: the run's encoder %s has hidden size %d, the run's model was trained on %d: it is another encoder than the one the run was trained over",
			dir, name, cfg.Hidden, info.Model.InputDim)
	}
	return nil
}
