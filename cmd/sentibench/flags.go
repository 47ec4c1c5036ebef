package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/distill"
	"github.com/sentibench/sentibench/internal/progress"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/report"
	"github.com/sentibench/sentibench/train"
)

// Every value given on the command line is checked here, before any work, by the flag's name:
// one rule per flag name, the same in every command that has the flag. A value that breaks its
// rule is a usage error (exit code 2) that names the flag, the value and what is wanted. The
// rules that need several values at once (an encoder without the bigru model, say) are the
// libraries' own: train.Config.Check answers a *train.ConfigError, which configError turns
// into the same kind of usage error.

// flagRule checks one flag's value (as given on the command line) and says what is wanted.
type flagRule func(value string) (ok bool, want string)

// positive: a size, count or rate whose zero (or negative) value stands for "the default"
// inside the program, so that `--lr 0` or `--threads -1` is an error rather than a silent
// default.
func positive(v string) (bool, string) {
	x, err := strconv.ParseFloat(v, 64)
	return err == nil && x > 0, "want a positive number (leave the flag out for the default)"
}

// named is a column or field name, which an empty value would silently replace by the default.
func named(v string) (bool, string) {
	return v != "", "want a column or field name (leave the flag out for the default)"
}

// zeroOr: a count or size whose 0 means something (the meaning, as "never stop early").
func zeroOr(meaning string) flagRule {
	return func(v string) (bool, string) {
		x, err := strconv.ParseFloat(v, 64)
		return err == nil && x >= 0, fmt.Sprintf("want 0 (%s) or a positive number", meaning)
	}
}

// className is one of --labels' names, which must not be empty.
func className(v string) (bool, string) {
	return v != "", "want class names, none empty, comma-separated"
}

// probability is a dropout: in [0, 1).
func probability(v string) (bool, string) {
	x, err := strconv.ParseFloat(v, 64)
	return err == nil && x >= 0 && x < 1, "want a probability in [0, 1)"
}

// fraction is a weight or probability in [0, 1].
func fraction(v string) (bool, string) {
	x, err := strconv.ParseFloat(v, 64)
	return err == nil && x >= 0 && x <= 1, "want a number in [0, 1]"
}

// oneOf accepts the given words only.
func oneOf(words ...string) flagRule {
	return func(v string) (bool, string) {
		return slices.Contains(words, v), "want " + orList(words)
	}
}

// deviceName is train's device syntax (see train.OpenGPU): cpu, cuda, gpu or cuda:N.
var deviceName = regexp.MustCompile(`^(?i:cpu|cuda|gpu|cuda:[0-9]+)$`)

func device(v string) (bool, string) {
	return deviceName.MatchString(v), "want cpu, cuda or cuda:N"
}

// parsedBy accepts what a parser of the program accepts; its error says what is wanted.
func parsedBy[T any](parse func(string) (T, error)) flagRule {
	return func(v string) (bool, string) {
		_, err := parse(v)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	}
}

// parseSchedule accepts a learning-rate schedule's name.
func parseSchedule(v string) (nn.ScheduleKind, error) {
	for _, k := range nn.ScheduleKinds() {
		if string(k) == v {
			return k, nil
		}
	}
	return "", fmt.Errorf("want %s", scheduleList())
}

// blasChoice is a BLAS by name (see internal/blas.Load) or the path of a library that exists.
func blasChoice(v string) (bool, string) {
	switch strings.TrimSpace(v) {
	case "", "auto", "openblas", "gonum", "go", "purego":
		return true, ""
	}
	_, err := os.Stat(v)
	return err == nil, "want auto, openblas, gonum or the path of a CBLAS library (no such file)"
}

// flagRules are the rules by flag name.
var flagRules = map[string]flagRule{
	// train, distill, eval, predict, embed, bench, serve
	"threads": positive, "batch-size": positive, "epochs": positive, "hidden": positive,
	"layers": positive, "embedding-dim": positive, "filters": positive, "lr": positive,
	"vocab-size": positive, "teacher-batch": positive, "temperature": positive,
	"patience": zeroOr("never stop early"), "limit": zeroOr("all reviews"), "max-len": positive,
	"max-batches": zeroOr("all batches"), "clip-norm": zeroOr("no clipping"),
	"truncate-head": zeroOr("the first word pieces"), "unsup-limit": zeroOr("all"),
	"augment": zeroOr("none"), "ngram-max": zeroOr("up to the whole review"),
	"throughput-reviews": zeroOr("none"),
	"warmup-steps":       zeroOr("no warmup"), "weight-decay": zeroOr("no decay"), "grad-accum": positive,
	"warmup-ratio": fraction,
	"lr-schedule":  parsedBy(parseSchedule),
	"dropout":      probability, "alpha": fraction, "mask-prob": fraction, "ngram-prob": fraction,
	"model":      oneOf(nn.KindLSTM, nn.KindCNN, nn.KindBiGRU),
	"student":    oneOf(nn.KindCNN, nn.KindLSTM),
	"loss":       oneOf(distill.LossKD, distill.LossMSE),
	"pool":       oneOf(nn.PoolLast, nn.PoolConcat),
	"checkpoint": oneOf(train.BestDir, train.LastDir),
	"split":      oneOf("test", "valid", "train", "all"),
	"target":     oneOf(data.Targets()...),
	"labels":     className,
	"device":     device,
	"blas":       blasChoice,
	"progress":   parsedBy(progress.ParseMode),
	"format":     parsedBy(report.ParseFormat),
	// bench: the rule applies to each value of the list
	"models":   oneOf(nn.KindLSTM, nn.KindCNN, nn.KindBiGRU),
	"devices":  device,
	"dropouts": probability,
	// own data's columns (train, distill, eval; data's fields)
	"text-column": named, "label-column": named, "text-field": named, "label-field": named,
	// serve
	"max-batch": positive, "max-queue": positive, "max-body-bytes": positive, "max-texts": positive,
	"max-text-bytes": positive,
	// wordvec
	"dim": positive, "window": positive, "negative": positive, "min-count": positive,
}

// ownRules are the flags that mean something else in one command, by "COMMAND --FLAG"; that
// command checks them itself.
var ownRules = map[string]bool{
	"sentibench data info --vocab-size": true, // 0 keeps every word
	"sentibench export --format":        true, // a model format (onnx), not a report's
}

// zeroDurations are the duration flags whose 0 means something (no delay); every other
// duration flag wants a positive duration, since the program would replace 0 by its default.
var zeroDurations = map[string]bool{"shutdown-delay": true}

// checkGivenValues refuses a value the user gave that the program would otherwise replace by
// its default without a word, or that is outside what the flag can mean; it brings --threads
// over the number of cores down to that number, with one line on stderr.
func checkGivenValues(c *cobra.Command) error {
	var errs []error
	c.Flags().Visit(func(f *pflag.Flag) {
		if err := checkFlag(c, f); err != nil {
			errs = append(errs, err)
		}
	})
	if len(errs) > 0 {
		return errs[0] // Visit goes in name order: the first flag's problem
	}
	return clampThreads(c)
}

func checkFlag(c *cobra.Command, f *pflag.Flag) error {
	v := f.Value.String()
	bad := func(want string) error { return usageError{fmt.Sprintf("--%s %s: %s", f.Name, v, want)} }
	switch f.Value.Type() {
	case "float64", "float32":
		if x, err := strconv.ParseFloat(v, 64); err == nil && (math.IsNaN(x) || math.IsInf(x, 0)) {
			return bad("want a finite number")
		}
	case "duration":
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
		case d < 0:
			return bad("want a positive duration")
		case d == 0 && !zeroDurations[f.Name]:
			return bad("want a positive duration (leave the flag out for the default)")
		}
	}
	if ownRules[c.CommandPath()+" --"+f.Name] {
		return nil
	}
	rule, ok := flagRules[f.Name]
	if !ok {
		return nil
	}
	values := []string{v}
	if list, isList := f.Value.(pflag.SliceValue); isList {
		values = list.GetSlice()
	}
	for _, v := range values {
		if x, err := strconv.ParseFloat(v, 64); err == nil && strings.Contains(f.Value.Type(), "float") {
			v = strconv.FormatFloat(x, 'g', -1, 64) // a float list prints 1.5 as 1.500000
		}
		if ok, want := rule(strings.TrimSpace(v)); !ok {
			return usageError{fmt.Sprintf("--%s %s: %s", f.Name, v, want)}
		}
	}
	return nil
}

// clampThreads brings a --threads over the number of cores down to that number: more worker
// threads than cores only wait for each other (--threads 10000 ran 6.8 times slower than
// --threads 1), and on the CPU the results are the same, bit for bit, whatever the threads.
func clampThreads(c *cobra.Command) error {
	f := c.Flags().Lookup("threads")
	if f == nil || !f.Changed {
		return nil
	}
	n, err := strconv.Atoi(f.Value.String())
	if err != nil || n <= runtime.NumCPU() {
		return nil
	}
	cores := runtime.NumCPU()
	if err := f.Value.Set(strconv.Itoa(cores)); err != nil {
		return err
	}
	fmt.Fprintf(c.ErrOrStderr(), "sentibench: --threads %d is more than the %d cores of this machine: using %d\n", n, cores, cores)
	return nil
}

// configAliases name the flag of a train.Config field where a command's flag is not the
// field's name with dashes (distill's student model is --student).
var configAliases = map[string]map[string]string{
	"distill": {"model": "student"},
	"bench":   {"model": "models", "dropout": "dropouts", "device": "devices"},
}

// configError turns a *train.ConfigError about a configuration made from cmd's flags into a
// usage error naming the flag; any other error is returned as it is.
func configError(cmd *cobra.Command, err error) error {
	var ce *train.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	name := strings.ReplaceAll(ce.Field, "_", "-")
	if alias, ok := configAliases[cmd.Name()][ce.Field]; ok {
		name = alias
	}
	f := cmd.Flags().Lookup(name)
	if f == nil { // not a flag of this command: a setting it takes from elsewhere
		return err
	}
	setting := "--" + name
	if f.Changed && f.Value.Type() != "bool" {
		value := f.Value.String()
		if list, isList := f.Value.(pflag.SliceValue); isList { // as given: a,b, not [a,b]
			value = strings.Join(list.GetSlice(), ",")
		}
		setting += " " + value
	}
	return usageError{fmt.Sprintf("%s: %s", setting, ce.Problem)}
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
