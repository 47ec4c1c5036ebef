package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/train"
)

func newEvalCmd() *cobra.Command {
	var (
		o       train.EvalOptions
		run     string
		levels  string
		jsonOut bool
	)
	cmd := &cobra.Command{
		Use:   "eval --run RUN_DIR",
		Short: "Evaluate a trained run: loss, accuracy, precision, recall, F1, confusion matrix",
		Example: `  sentibench eval --run runs/lstm-20261125-101500
  sentibench eval --run runs/cnn-1 --split valid
  sentibench eval --run runs/cnn-1 --data my-reviews.csv
  sentibench eval --run runs/cnn-1 --data my-reviews.csv --split test
  sentibench eval --run runs/cnn-1 --levels rating   # a binary IMDB run's probability cut into the 8 star ratings`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if run == "" {
				return usageError{"--run RUN_DIR is required"}
			}
			if levels != "" {
				return evalLevels(cmd, run, levels, o, jsonOut)
			}
			if o.Data != "" {
				var err error
				if o.Data, err = data.Resolve(cmd.Context(), data.Locator{Path: o.Data, NoDownload: true}); err != nil {
					return err
				}
			}
			if o.Split == "" {
				o.Split = "test" // the run's own data: the recipe's test split
				if o.Data != "" {
					o.Split = "all" // other data: every labelled example
				}
			}
			o.Log = cmd.OutOrStdout()
			if jsonOut {
				o.Log = cmd.ErrOrStderr()
			}
			m, classes, err := train.Evaluate(cmd.Context(), run, o)
			if err != nil {
				return err
			}
			if jsonOut {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Run     string   `json:"run"`
					Split   string   `json:"split"`
					Classes []string `json:"classes"`
					train.Metrics
				}{run, o.Split, classes, m})
			}
			what := o.Split + " split"
			if o.Split == "all" {
				what = "all examples"
			}
			if o.Data != "" {
				what += " of " + o.Data
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Run %s, %s\n%s", run, what, m.Format(classes))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&run, "run", "", "the run directory")
	f.StringVar(&o.Data, "data", "", "evaluate on this data set instead of the run's own: every labelled example, or the part --split names (its split column)")
	f.StringVar(&o.Split, "split", "", "test, valid, train or all (default: test for the run's own data, all for --data)")
	f.IntVar(&o.MaxLen, "max-len", 0, "truncate longer reviews to their first N tokens (default: the run's bound)")
	f.StringVar(&o.Checkpoint, "checkpoint", "best", "best or last")
	f.IntVar(&o.BatchSize, "batch-size", 0, "batch size (default: the run's)")
	f.IntVar(&o.Threads, "threads", 0, "worker threads (default: all cores)")
	f.BoolVar(&jsonOut, "json", false, "print JSON")
	f.StringVar(&levels, "levels", "", "score a binary run's positive-class probability cut into this ordinal target's levels (rating, rating4), the cut points chosen on the valid split")
	return cmd
}

// evalLevels is eval --levels: a binary run's probability cut into an ordinal target's levels
// (train.EvaluateLevels), scored on the run's test split.
func evalLevels(cmd *cobra.Command, run, target string, o train.EvalOptions, jsonOut bool) error {
	switch {
	case target != data.TargetRating && target != data.TargetRating4:
		return usageError{fmt.Sprintf("--levels %q: want %s or %s (an ordinal target of IMDB's star ratings)", target, data.TargetRating, data.TargetRating4)}
	case o.Data != "":
		return usageError{"--levels scores the run's own data set (its valid split chooses the cut points): leave out --data"}
	case o.Split != "" && o.Split != "test":
		return usageError{fmt.Sprintf("--levels scores the test split (the valid split chooses the cut points): leave out --split %s", o.Split)}
	}
	o.Log = cmd.OutOrStdout()
	if jsonOut {
		o.Log = cmd.ErrOrStderr()
	}
	res, err := train.EvaluateLevels(cmd.Context(), run, target, o)
	if err != nil {
		return err
	}
	if jsonOut {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Run     string    `json:"run"`
			Split   string    `json:"split"`
			Levels  string    `json:"levels"`
			Classes []string  `json:"classes"`
			Cuts    []float64 `json:"cuts"`
			Loss    *float64  `json:"loss"` // null: no loss of levels (shadows Metrics.Loss, NaN)
			train.Metrics
		}{run, "test", target, res.Classes, res.Cuts, nil, res.Metrics})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Run %s, test split, as the levels of target %s\n%s", run, target, res.Metrics.Format(res.Classes))
	return nil
}

func newPredictCmd() *cobra.Command {
	var (
		o       train.LoadOptions
		run     string
		jsonOut bool
	)
	cmd := &cobra.Command{
		Use:   "predict --run RUN_DIR [TEXT...]",
		Short: "Classify texts with a trained run (arguments, or one text per line on stdin)",
		Long: `predict classifies texts with a trained run: per text its label and the probability of
every class of the run.

A binary sentiment run (classes neg and pos, or any two whose second is pos, positive, 1 or
true) prints per text the probability of the positive class, its sentiment level (Extremely
Negative, Negative, Somewhat Negative, Somewhat Positive, Positive, Extremely Positive) and the
text. Any other run (K classes, or two of other names) prints a header line, then per text the
predicted class, every class's probability in the run's class order and the text, separated by
tabs.

--json writes one object per text: text, model, label (the sentiment level of a binary
sentiment run, else the predicted class), probability (a binary run's probability of its second
class, else the predicted class's), class (the predicted class) and probabilities (every
class's, by name, in the run's class order).`,
		Example: `  sentibench predict --run runs/cnn-1 "A wonderful, moving film."
  cat reviews.txt | sentibench predict --run runs/cnn-1 --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if run == "" {
				return usageError{"--run RUN_DIR is required"}
			}
			p, err := train.Load(run, o)
			if err != nil {
				return err
			}
			texts := args
			if len(texts) == 0 {
				if texts, err = readLines(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			classes := p.Classes()
			sentiment := train.SentimentClasses(classes)
			if !jsonOut && !sentiment {
				fmt.Fprintf(out, "label\t%s\ttext\n", strings.Join(classes, "\t"))
			}
			var line strings.Builder
			for start := 0; start < len(texts); start += 64 {
				chunk := texts[start:min(len(texts), start+64)]
				cs, err := p.Classify(chunk)
				if err != nil {
					return fmt.Errorf("predict: %w", err)
				}
				for i, c := range cs {
					label, prob := c.Verdict(classes)
					switch {
					case jsonOut:
						err = enc.Encode(predictionJSON{Text: chunk[i], Model: p.Name(), Label: label, Probability: prob,
							Class: c.Label, Probabilities: c.ByClass(classes)})
					case sentiment:
						_, err = fmt.Fprintf(out, "%.4f\t%s\t%s\n", prob, label, ellipsis(chunk[i], 60))
					default:
						line.Reset()
						line.WriteString(label)
						for _, q := range c.Probabilities {
							fmt.Fprintf(&line, "\t%.4f", q)
						}
						_, err = fmt.Fprintf(out, "%s\t%s\n", line.String(), ellipsis(chunk[i], 60))
					}
					if err != nil {
						return err
					}
				}
			}
			if n := p.Truncated(); n > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "predict: %d text(s) longer than %d tokens truncated to their first %d (--max-len sets the bound)\n", n, p.MaxTokens(), p.MaxTokens())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&run, "run", "", "the run directory")
	f.StringVar(&o.Checkpoint, "checkpoint", "best", "best or last")
	f.IntVar(&o.Threads, "threads", 0, "worker threads (default: all cores)")
	f.IntVar(&o.MaxLen, "max-len", 0, "truncate longer texts to their first N tokens (default: the run's bound)")
	f.BoolVar(&jsonOut, "json", false, "one JSON object per text")
	return cmd
}

// predictionJSON is predict --json's object for one text (see the command's help).
type predictionJSON struct {
	Text          string                   `json:"text"`
	Model         string                   `json:"model"`
	Label         string                   `json:"label"`
	Probability   float64                  `json:"probability"`
	Class         string                   `json:"class"`
	Probabilities train.ClassProbabilities `json:"probabilities"`
}

// readLines reads one text per non-empty line.
func readLines(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading texts from stdin: %w", err)
	}
	if len(out) == 0 {
		return nil, usageError{"no texts: give them as arguments or one per line on stdin"}
	}
	return out, nil
}

func ellipsis(s string, n int) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}
