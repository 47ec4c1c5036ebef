package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
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
