package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/train"
)

// TestConfigFileRepeatsARun: a run's config.json given to --config repeats the run, and a flag
// on the command line changes one setting: the new run's config is the old one's but the seed.
func TestConfigFileRepeatsARun(t *testing.T) {
	first := filepath.Join(t.TempDir(), "first")
	if _, errOut, err := run(t, smallTrainArgs(first, "--lr-schedule", "cosine", "--warmup-ratio", "0.25", "--weight-decay", "0.01", "--grad-accum", "2")...); err != nil {
		t.Fatalf("train: %v\n%s", err, errOut)
	}
	second := filepath.Join(t.TempDir(), "second")
	if _, errOut, err := run(t, "train", "--config", filepath.Join(first, train.ConfigFile), "--seed", "7", "--run", second, "-q"); err != nil {
		t.Fatalf("train --config: %v\n%s", err, errOut)
	}
	a, err := train.ReadRunInfo(first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := train.ReadRunInfo(second)
	if err != nil {
		t.Fatal(err)
	}
	if b.Config.Seed != 7 {
		t.Errorf("seed %d, want the command line's 7", b.Config.Seed)
	}
	want := a.Config
	want.Seed = 7
	if !sameConfig(want, b.Config) {
		t.Errorf("repeated run's config\n%+v\nwant\n%+v", b.Config, want)
	}
}

func sameConfig(a, b train.Config) bool {
	a.RunDir, b.RunDir = "", ""
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}

// TestConfigFileYAMLPrecedence: a YAML file sets flags by their names (dashes or underscores);
// the command line wins over it.
func TestConfigFileYAMLPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "run.yaml")
	yamlText := `# a small run
model: cnn
data: sample
limit: 40
epochs: 1
batch_size: 16
embedding-dim: 8
filters: 4
vocab_size: 500
lr_schedule: linear
warmup_steps: 2
seed: 99
threads: 2
`
	if err := os.WriteFile(cfgFile, []byte(yamlText), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	if _, errOut, err := run(t, "train", "--config", cfgFile, "--epochs", "2", "--run", runDir, "-q"); err != nil {
		t.Fatalf("train --config: %v\n%s", err, errOut)
	}
	info, err := train.ReadRunInfo(runDir)
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.Kind != "cnn" || c.Epochs != 2 || c.BatchSize != 16 || c.EmbedDim != 8 || c.LRSchedule != "linear" || c.WarmupSteps != 2 || c.Seed != 99 || c.Limit != 40 {
		t.Errorf("config %+v: want the file's settings and the command line's 2 epochs", c)
	}
	if c.Dropout != train.DefaultDropout("cnn") {
		t.Errorf("dropout %v, want the cnn's default", c.Dropout)
	}
}

// TestConfigFileErrors: unknown keys, a value of the wrong type, a value a flag refuses and a
// file that is neither YAML nor JSON are usage errors naming the key or the file.
func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, text string
		want       []string
	}{
		{"unknown.yaml", "model: cnn\nlearning_rate: 0.1\nbatchsize: 3\n", []string{"unknown keys batchsize, learning_rate", "unknown.yaml"}},
		{"type.yaml", "epochs: many\n", []string{"type.yaml: epochs:", "--epochs takes a value of type int"}},
		{"list.json", `{"seed": [1, 2]}`, []string{"list.json: seed:", "--seed"}},
		{"map.yaml", "lr:\n  value: 1\n", []string{"map.yaml: lr:", "no flag value"}},
		{"rule.yaml", "warmup_ratio: -0.5\n", []string{"rule.yaml: warmup_ratio:", "--warmup-ratio -0.5: want a number in [0, 1]"}},
		{"broken.json", `{"epochs": 2,`, []string{"broken.json: not valid JSON"}},
		{"binary.bin", "\x00\x01\x02: [\x7f", []string{"binary.bin: neither YAML nor JSON"}},
		{"scalar.yaml", "just some words\n", []string{"scalar.yaml: neither a YAML mapping nor a JSON object"}},
		{"missing.yaml", "", []string{"missing.yaml", "no such file"}},
	} {
		path := filepath.Join(dir, c.name)
		if c.name != "missing.yaml" {
			if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		runDir := filepath.Join(dir, "run-"+c.name)
		_, _, err := run(t, "train", "--config", path, "--run", runDir, "-q")
		if err == nil || !isUsage(err) {
			t.Errorf("%s: got %v, want a usage error", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
		if _, err := os.Stat(runDir); !os.IsNotExist(err) {
			t.Errorf("%s: a run directory was made", c.name)
		}
	}
}
