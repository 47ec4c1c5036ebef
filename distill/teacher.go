package distill

// The teacher's logits over the transfer set: computed once, in evaluation mode, and cached in
// the student's run directory, so that the student's epochs never run the teacher.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/internal/safetensors"
	"github.com/sentibench/sentibench/train"
)

// Teacher gives texts their logits, as a trained run's model does in evaluation mode (dropout
// off): in the order of the texts, the model's outputs per text (one for a binary model, K for K
// classes), row-major. *train.Predictor is one.
type Teacher interface {
	Logits(texts []string) ([]float32, error)
}

// LoadTeacher opens a teacher run's best checkpoint (train.Load).
func LoadTeacher(dir string, o train.LoadOptions) (Teacher, error) {
	p, err := train.Load(dir, o)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// LogitsFile is the cache of the teacher's logits inside the student's run directory.
const LogitsFile = "teacher_logits.safetensors"

// cacheVersion changes whenever the way the logits are computed changes.
const cacheVersion = "sentibench distill teacher logits v1 (batches of the texts by byte length, longest first)"

// saveEvery is how often a long computation saves what it has (a killed run resumes from it).
const saveEvery = time.Minute

// logitCache is the content of LogitsFile: the transfer set's dataset indices and the teacher's
// logits of each (k per example: one for a binary teacher, K for K classes; the tensor is (n)
// or (n, K)), under the key of what they were computed from. done counts the texts computed so
// far, in the order of computation (a partial cache lets a killed run go on from there).
type logitCache struct {
	key    string
	index  []int64
	logits []float32
	k      int
	done   int
}

// cacheKey hashes everything the logits depend on: the teacher's configuration, vocabulary and
// best weights, the transfer set's indices and texts, the augmentation settings, the batch
// size and where the logits come from (logitSource).
func cacheKey(teacherDir string, ts *transferSet, aug Augment, batch int, source string) (string, error) {
	h := sha256.New()
	io.WriteString(h, cacheVersion+"\n")
	if source != sourceTexts { // the key of logits from the texts is what it was before there was a choice
		io.WriteString(h, "source: "+source+"\n")
	}
	for _, name := range []string{train.ConfigFile, train.VocabFile, filepath.Join(train.BestDir, train.WeightsFile)} {
		p := filepath.Join(teacherDir, name)
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) && name == train.VocabFile {
			continue // feature models have no vocabulary
		}
		if err != nil {
			return "", fmt.Errorf("distill: teacher: %w", err)
		}
		fmt.Fprintf(h, "%s\n", name)
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("distill: teacher: reading %s: %w", p, err)
		}
	}
	settings, _ := json.Marshal(struct {
		Augment Augment `json:"augment"`
		Batch   int     `json:"batch"`
		N       int     `json:"n"`
	}{aug, batch, ts.n})
	h.Write(settings)
	var num [16]byte
	for k, text := range ts.texts {
		binary.LittleEndian.PutUint64(num[:8], uint64(ts.index[k]))
		binary.LittleEndian.PutUint64(num[8:], uint64(len(text)))
		h.Write(num[:])
		io.WriteString(h, text)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readCache reads a logits cache; a missing file is (nil, nil).
func readCache(path string) (*logitCache, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	defer f.Close()
	c := &logitCache{key: f.Metadata["key"]}
	if c.done, err = strconv.Atoi(f.Metadata["done"]); err != nil {
		return nil, fmt.Errorf("distill: %s: bad \"done\" count %q", path, f.Metadata["done"])
	}
	if c.index, err = f.Int64("index"); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	c.k = 1
	if info, ok := f.Tensors["logits"]; ok && len(info.Shape) == 2 {
		c.k = info.Shape[1]
	}
	shape := []int{len(c.index)}
	if c.k != 1 {
		shape = append(shape, c.k)
	}
	if c.logits, err = f.Float32("logits", shape...); err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	if c.done < 0 || c.done > len(c.index) {
		return nil, fmt.Errorf("distill: %s: %d of %d logits done", path, c.done, len(c.index))
	}
	return c, nil
}

// write saves the cache atomically.
func (c *logitCache) write(path, teacherDir string) error {
	meta := map[string]string{"key": c.key, "done": strconv.Itoa(c.done), "teacher": teacherDir, "version": cacheVersion}
	shape := []int{len(c.index)} // a binary teacher's, as the cache has always been
	if c.k != 1 {
		shape = append(shape, c.k)
	}
	err := safetensors.WriteFile(path, []safetensors.Tensor{
		safetensors.FromInt64("index", []int{len(c.index)}, c.index),
		safetensors.FromFloat32("logits", shape, c.logits),
	}, meta)
	if err != nil {
		return fmt.Errorf("distill: writing the teacher's logits: %w", err)
	}
	return nil
}

// startingLogits reads the logits cache named by Config.TeacherLogits and checks that it holds
// n examples' logits, K each, under key: those of this run's teacher and transfer set.
func startingLogits(name, key string, n, K int) (*logitCache, error) {
	c, path, err := openStartingLogits(name)
	if err != nil {
		return nil, err
	}
	if c.key != key || len(c.index) != n || c.k != K {
		return nil, fmt.Errorf("distill: the teacher logits %s were computed from another teacher, transfer set, "+
			"augmentation or teacher batch size than this run's (leave them out to compute this run's)", path)
	}
	return c, nil
}

// openStartingLogits reads the logits cache named by Config.TeacherLogits: a run directory or
// the file itself. A missing, empty or damaged file is an error naming it.
func openStartingLogits(name string) (*logitCache, string, error) {
	path := name
	if info, err := os.Stat(name); err == nil && info.IsDir() {
		path = filepath.Join(name, LogitsFile)
	}
	c, err := readCache(path)
	if err != nil {
		return nil, path, fmt.Errorf("%w (the teacher logits to start from)", err)
	}
	if c == nil {
		return nil, path, fmt.Errorf("distill: the teacher logits %s: no such file", path)
	}
	return c, path, nil
}

// computeOrder is the order in which the texts are run through the teacher: by byte length,
// longest first (stable), so that each batch holds texts of about the same length.
func computeOrder(texts []string) []int {
	order := make([]int, len(texts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(texts[b]) - len(texts[a]) })
	return order
}

// teacherLogits returns the teacher's K logits of every text of the transfer set (K = 1 for a
// binary teacher), row-major in the transfer set's order, from the cache in dir when its key
// matches, else computing them (or the rest of them, after a partial cache) with the teacher
// that open returns, saving the cache as it goes.
func teacherLogits(ctx context.Context, dir string, cfg Config, ts *transferSet, K int, open func() (Teacher, error), hooks train.Hooks) ([]float32, error) {
	path := filepath.Join(dir, LogitsFile)
	info, err := train.ReadRunInfo(cfg.Teacher)
	if err != nil {
		return nil, fmt.Errorf("distill: teacher: %w", err)
	}
	source := logitSource(info)
	key, err := cacheKey(cfg.Teacher, ts, cfg.Augment, cfg.TeacherBatch, source)
	if err != nil {
		return nil, err
	}
	c, err := readCache(path)
	if err != nil {
		return nil, err
	}
	switch {
	case c == nil:
	case c.key != key || len(c.index) != len(ts.index) || c.k != K:
		fmt.Fprintf(hooks.Log, "Teacher logits: %s was computed from another teacher or transfer set; computing them again\n", path)
		if _, err := os.Stat(filepath.Join(dir, train.LastDir)); err == nil {
			fmt.Fprintf(hooks.Log, "warning: the student in %s has already trained on the old logits\n", dir)
		}
		c = nil
	case c.done == len(c.index):
		fmt.Fprintf(hooks.Log, "Teacher logits: %d from the cache %s\n", len(c.logits), path)
		return c.logits, nil
	}
	if c == nil && cfg.TeacherLogits != "" {
		if c, err = startingLogits(cfg.TeacherLogits, key, len(ts.index), K); err != nil {
			return nil, err
		}
		fmt.Fprintf(hooks.Log, "Teacher logits: %d of %d from %s\n", c.done, len(c.index), cfg.TeacherLogits)
		if c.done == len(c.index) {
			if err := c.write(path, cfg.Teacher); err != nil {
				return nil, err
			}
			return c.logits, nil
		}
	}
	if c == nil {
		c = &logitCache{key: key, index: make([]int64, len(ts.index)), logits: make([]float32, len(ts.index)*K), k: K}
		for k, i := range ts.index {
			c.index[k] = int64(i)
		}
		for j := range c.logits {
			c.logits[j] = float32(math.NaN())
		}
	}

	teacher, err := open()
	if err != nil {
		return nil, fmt.Errorf("distill: loading the teacher: %w", err)
	}
	if source == sourceFeatures {
		ft, ok := teacher.(FeatureTeacher)
		if !ok {
			return nil, fmt.Errorf("distill: the teacher %s reads encoder features, and its loader gave a %T, which cannot", cfg.Teacher, teacher)
		}
		if c.logits, err = featureLogits(ctx, cfg, info, ts, ft, K, hooks); err != nil {
			return nil, err
		}
		c.done = len(c.index)
		if err := c.write(path, cfg.Teacher); err != nil {
			return nil, err
		}
		fmt.Fprintf(hooks.Log, "Teacher logits: cached in %s\n", path)
		return c.logits, nil
	}
	order := computeOrder(ts.texts)
	bar := progress.New(hooks.Progress, progress.Options{Label: "Teacher logits", Unit: "reviews",
		Total: int64(len(order)), Mode: hooks.ProgressMode})
	bar.Start(int64(c.done))
	if c.done > 0 {
		fmt.Fprintf(hooks.Log, "Teacher logits: going on after %d of %d\n", c.done, len(order))
	}
	t0 := time.Now()
	lastSave := t0
	batch := make([]string, 0, cfg.TeacherBatch)
	for c.done < len(order) {
		if ctx.Err() != nil {
			bar.Done()
			if err := c.write(path, cfg.Teacher); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w while computing the teacher's logits (%d of %d saved); resume with --resume %s",
				train.ErrInterrupted, c.done, len(order), dir)
		}
		end := min(c.done+cfg.TeacherBatch, len(order))
		batch = batch[:0]
		for _, k := range order[c.done:end] {
			batch = append(batch, ts.texts[k])
		}
		logits, err := teacher.Logits(batch)
		if err != nil {
			return nil, fmt.Errorf("distill: the teacher's logits of transfer example %d: %w", order[c.done], err)
		}
		if len(logits) != len(batch)*K {
			return nil, fmt.Errorf("distill: the teacher gave %d logits for %d texts of %d per text", len(logits), len(batch), K)
		}
		for j, k := range order[c.done:end] {
			if err := storeLogits(c.logits, k, logits[j*K:(j+1)*K]); err != nil {
				return nil, err
			}
		}
		bar.Add(int64(end - c.done))
		c.done = end
		if c.done < len(order) && time.Since(lastSave) > saveEvery {
			if err := c.write(path, cfg.Teacher); err != nil {
				return nil, err
			}
			lastSave = time.Now()
		}
	}
	bar.Done()
	if err := c.write(path, cfg.Teacher); err != nil {
		return nil, err
	}
	fmt.Fprintf(hooks.Log, "Teacher logits: %d computed in %.1f s, cached in %s\n", len(order), time.Since(t0).Seconds(), path)
	return c.logits, nil
}

// storeLogits copies the teacher's logits of transfer example k into its row of all (one row of
// len(row) logits per example), refusing a NaN or infinite logit, which would poison every loss
// that reads it.
func storeLogits(all []float32, k int, row []float32) error {
	for o, z := range row {
		if math.IsNaN(float64(z)) || math.IsInf(float64(z), 0) {
			return fmt.Errorf("distill: the teacher's logit %d of transfer example %d is %v", o, k, z)
		}
	}
	copy(all[k*len(row):(k+1)*len(row)], row)
	return nil
}
