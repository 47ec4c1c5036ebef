package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/sentibench/sentibench/train"
)

// logFlags are the structured log's flags (serve, train, distill): its format and, where the
// command logs at several levels, its level.
type logFlags struct {
	format string
	level  string
}

// The log formats: slog's text handler (key=value) and its JSON handler (one object a line).
const (
	logText = "text"
	logJSON = "json"
)

func (l *logFlags) add(cmd *cobra.Command, withLevel bool) {
	cmd.Flags().StringVar(&l.format, "log-format", logText, "log format: text (key=value) or json (one JSON object a line, for log pipelines)")
	if withLevel {
		cmd.Flags().StringVar(&l.level, "log-level", "info", "least level logged: debug (one line per request), info, warn or error")
	}
}

// json reports whether the log is JSON.
func (l *logFlags) json() bool { return l.format == logJSON }

// logger returns a logger writing to w in the chosen format and level; a format or level it
// does not know is a usage error naming the flag.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if l.level != "" {
		levels := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}
		level, ok := levels[strings.ToLower(l.level)]
		if !ok {
			return nil, usageError{fmt.Sprintf("--log-level %s: want debug, info, warn or error", l.level)}
		}
		opts.Level = level
	}
	switch l.format {
	case logText:
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case logJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format %s: want text or json", l.format)}
}

// trainRecords is train's report as JSON log records (train --log-format json), for log
// pipelines. The trainer writes its report as lines of text to Hooks.Log; this writer takes
// those lines and logs each as a record: the lines it knows (the run directory, the data, the
// model and its parameters) with their figures as typed fields, any other line with its text
// as the message (a line that begins "warning: " at the warn level). The epoch lines and the
// test line are left out: their records come typed from the trainer's own values instead
// (epoch, from Hooks.OnEpoch; final, from the run's result), so no figure is parsed back from
// its rounded text. The progress bar is not touched: it goes to stderr.
type trainRecords struct {
	log *slog.Logger

	mu      sync.Mutex
	partial []byte // the start of a line whose line feed has not come yet
}

func newTrainRecords(log *slog.Logger) *trainRecords { return &trainRecords{log: log} }

// Write logs each complete line of p; a line without its line feed waits for the rest.
func (r *trainRecords) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.partial = append(r.partial, p...)
	for {
		i := bytes.IndexByte(r.partial, '\n')
		if i < 0 {
			break
		}
		r.line(string(r.partial[:i]))
		r.partial = r.partial[i+1:]
	}
	return len(p), nil
}

// flush logs a last line that had no line feed.
func (r *trainRecords) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.partial) > 0 {
		r.line(string(r.partial))
		r.partial = nil
	}
}

// The lines of train's report that trainRecords knows, by the record they become. A line that
// does not match (its wording changed) is still logged, as text.
var (
	runDirLine = regexp.MustCompile(`^Run directory: (.+)$`)
	dataLine   = regexp.MustCompile(`^Data: (\d+) train \| (\d+) valid \| (\d+) test \(read and tokenized in ([0-9.]+) s\)$`)
	modelLine  = regexp.MustCompile(`^Model: (\S+), dropout (\S+), batch size (\d+), device (.+)$`)
	paramsLine = regexp.MustCompile(`^The model has ([0-9,]+) trainable parameters$`)
	// The lines whose records come typed from the trainer's values (epoch and final).
	epochLine = regexp.MustCompile(`^Epoch: \d+ \|`)
	testLine  = regexp.MustCompile(`^Test \(best epoch `)
)

func (r *trainRecords) line(s string) {
	s = strings.TrimRight(s, "\r")
	if strings.TrimSpace(s) == "" || epochLine.MatchString(s) || testLine.MatchString(s) {
		return
	}
	if d := runDirLine.FindStringSubmatch(s); d != nil {
		r.log.Info("run directory", "run", d[1])
	} else if d := dataLine.FindStringSubmatch(s); d != nil {
		r.log.Info("data", "train", count(d[1]), "valid", count(d[2]), "test", count(d[3]), "seconds", number(d[4]))
	} else if d := modelLine.FindStringSubmatch(s); d != nil {
		r.log.Info("model", "model", d[1], "dropout", number(d[2]), "batch_size", count(d[3]), "device", d[4])
	} else if d := paramsLine.FindStringSubmatch(s); d != nil {
		r.log.Info("parameters", "params", count(d[1]))
	} else if warning, ok := strings.CutPrefix(s, "warning: "); ok {
		r.log.Warn(warning)
	} else {
		r.log.Info(s)
	}
}

// count reads a whole number as train's report writes it ("1,026,901"); number a decimal one.
// The expressions above have matched their digits already.
func count(v string) int {
	n, _ := strconv.Atoi(strings.ReplaceAll(v, ",", ""))
	return n
}

func number(v string) float64 {
	x, _ := strconv.ParseFloat(v, 64)
	return x
}

// epoch logs an epoch's record (Hooks.OnEpoch): the figures of run.jsonl's epoch line.
func (r *trainRecords) epoch(e train.EpochRecord) error {
	attrs := []slog.Attr{
		slog.Int("epoch", e.Epoch),
		slog.Float64("train_loss", e.TrainLoss), slog.Float64("train_acc", e.TrainAcc),
		slog.Float64("valid_loss", e.ValidLoss), slog.Float64("valid_acc", e.ValidAcc),
		slog.Int("train_batches", e.TrainBatches),
		slog.Float64("seconds", e.Seconds), slog.Float64("train_seconds", e.TrainSeconds), slog.Float64("valid_seconds", e.ValidSeconds),
		slog.Float64("peak_rss_mib", e.PeakRSSMiB), slog.Float64("peak_heap_mib", e.PeakHeapMiB),
	}
	if e.PeakGPUMiB > 0 {
		attrs = append(attrs, slog.Float64("peak_gpu_mib", e.PeakGPUMiB))
	}
	r.log.LogAttrs(context.Background(), slog.LevelInfo, "epoch", attrs...)
	return nil
}

// final logs the run's test record: the figures of run.jsonl's last line.
func (r *trainRecords) final(dir string, f train.FinalRecord) {
	attrs := []slog.Attr{
		slog.String("run", dir),
		slog.Float64("test_loss", f.TestLoss), slog.Float64("test_acc", f.TestAcc),
		slog.Int("best_epoch", f.BestEpoch), slog.Float64("best_valid_loss", f.BestValidLoss), slog.Float64("best_valid_acc", f.BestValidAcc),
		slog.Int("epochs", f.Epochs), slog.Float64("seconds", f.TotalSeconds), slog.Float64("test_seconds", f.TestSeconds),
		slog.Float64("peak_rss_mib", f.PeakRSSMiB),
		slog.String("model", f.Model), slog.Int("params", f.Params),
	}
	if f.PeakGPUMiB > 0 {
		attrs = append(attrs, slog.Float64("peak_gpu_mib", f.PeakGPUMiB))
	}
	r.log.LogAttrs(context.Background(), slog.LevelInfo, "test", attrs...)
}
