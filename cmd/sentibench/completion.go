package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/train"
)

// Shell completion (cobra's `sentibench completion bash|zsh|fish|powershell`): the flags whose
// values are a fixed set complete them, and the flags that name an existing run directory
// complete the run directories (those holding config.json) under the typed path, or runs/.

// valueCompletions are the fixed values of flags, by flag name.
var valueCompletions = map[string][]string{
	"model":       {nn.KindLSTM, nn.KindCNN, nn.KindBiGRU},
	"models":      {nn.KindLSTM, nn.KindCNN, nn.KindBiGRU},
	"student":     {nn.KindCNN, nn.KindLSTM},
	"device":      {"cpu", "cuda", "cuda:0"},
	"devices":     {"cpu", "cuda"},
	"lr-schedule": scheduleNames(),
	"pool":        {nn.PoolLast, nn.PoolConcat},
	"checkpoint":  {train.BestDir, train.LastDir},
	"progress":    {"auto", "bar", "lines", "quiet"},
	"target":      data.Targets(),
}

func scheduleNames() []string {
	var out []string
	for _, k := range nn.ScheduleKinds() {
		out = append(out, string(k))
	}
	return out
}

// registerCompletions registers the value completions of every command under root.
func registerCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for name, values := range valueCompletions {
			if c.Flags().Lookup(name) != nil {
				c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
			}
		}
		// --resume names an existing run, and --run too but in train and distill, where it
		// names the new run's directory (any directory).
		for _, name := range []string{"resume", "run"} {
			if c.Flags().Lookup(name) == nil {
				continue
			}
			if name == "run" && (c.Name() == "train" || c.Name() == "distill") {
				c.RegisterFlagCompletionFunc(name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
					return nil, cobra.ShellCompDirectiveFilterDirs
				})
				continue
			}
			c.RegisterFlagCompletionFunc(name, completeRunDirs)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completeRunDirs lists the run directories (holding config.json) in the directory that
// toComplete is in, or in runs/ when nothing is typed; with none, the shell completes
// directories.
func completeRunDirs(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	parent := filepath.Dir(toComplete)
	if toComplete == "" {
		parent = "runs"
	} else if strings.HasSuffix(toComplete, string(filepath.Separator)) {
		parent = filepath.Clean(toComplete)
	}
	entries, err := os.ReadDir(parent)
	var runs []string
	for _, e := range entries {
		dir := filepath.Join(parent, e.Name())
		if !e.IsDir() || !strings.HasPrefix(dir, filepath.Clean(toComplete)) && toComplete != "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, train.ConfigFile)); err == nil {
			runs = append(runs, dir)
		}
	}
	if err != nil || len(runs) == 0 {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	return runs, cobra.ShellCompDirectiveNoFileComp
}
