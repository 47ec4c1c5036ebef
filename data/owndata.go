package data

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/sentibench/sentibench/internal/progress"
)

// Fields names the columns of a CSV or TSV file (from its header row) or the fields of the
// objects in a JSONL file. Empty names take the defaults.
type Fields struct {
	Text  string // the text (default "text"), required
	Label string // the label (default "label"), required; any string, or a JSON number or bool
	Split string // the part (default "split"), optional: "train", "valid" or "test"
}

func (f Fields) withDefaults() Fields {
	if f.Text == "" {
		f.Text = "text"
	}
	if f.Label == "" {
		f.Label = "label"
	}
	if f.Split == "" {
		f.Split = "split"
	}
	return f
}

// rowSink gathers own-data rows into folders by part and label, keeping file order.
type rowSink struct {
	path    string
	base    string
	index   map[[2]string]int
	folders []folder
}

func newRowSink(path string) *rowSink {
	return &rowSink{path: path, base: filepath.Base(path), index: map[[2]string]int{}}
}

// add checks and files one row; split is "" when the data have no split column.
func (s *rowSink) add(line int, text, label, split string, hasSplit bool, f Fields) error {
	where := fmt.Sprintf("%s:%d", s.path, line)
	if !utf8.ValidString(text) || !utf8.ValidString(label) || !utf8.ValidString(split) {
		return fmt.Errorf("%s: not valid UTF-8", where)
	}
	if text == "" {
		return fmt.Errorf("%s: empty text (%q)", where, f.Text)
	}
	if label == "" {
		return fmt.Errorf("%s: empty label (%q)", where, f.Label)
	}
	part := "train"
	if hasSplit {
		switch split {
		case "train", "valid", "test":
			part = split
		default:
			return fmt.Errorf("%s: %q is %q, want train, valid or test", where, f.Split, split)
		}
	}
	key := [2]string{part, label}
	k, ok := s.index[key]
	if !ok {
		k = len(s.folders)
		s.index[key] = k
		s.folders = append(s.folders, folder{part: part, label: label})
	}
	s.folders[k].items = append(s.folders[k].items, item{name: fmt.Sprintf("%s:%d", s.base, line), text: text})
	return nil
}

func (s *rowSink) source(format string) (*source, error) {
	if len(s.folders) == 0 {
		return nil, fmt.Errorf("%s: no examples", s.path)
	}
	return &source{name: s.path, format: format, folders: s.folders}, nil
}

// openCounted opens path with a progress report over its bytes.
func openCounted(path string, o Options) (*os.File, io.Reader, *progress.Reporter, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("data %s: %w", path, unwrapPathError(err))
	}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	p := progress.New(o.Progress, progress.Options{Label: "read " + filepath.Base(path), Unit: "B", Total: size, Mode: o.ProgressMode})
	return f, p.Reader(f), p, nil
}

// readTable reads a CSV file (sep ',': RFC 4180 quoting) or a TSV file (sep '\t': one row per
// line, fields split at tabs, no quoting) with a header row naming the columns.
func readTable(ctx context.Context, path string, sep rune, o Options) (*source, error) {
	f, r, p, err := openCounted(path, o)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	defer p.Done()
	format := "csv"
	var next func() (fields []string, line int, err error)
	if sep == ',' {
		cr := csv.NewReader(bufio.NewReaderSize(r, 1<<20))
		cr.ReuseRecord = true
		next = func() ([]string, int, error) {
			rec, err := cr.Read()
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					return nil, 0, fmt.Errorf("%s:%d: %v", path, pe.Line, pe.Err)
				}
				return nil, 0, err
			}
			line, _ := cr.FieldPos(0)
			return rec, line, nil
		}
	} else {
		format = "tsv"
		br := bufio.NewReaderSize(r, 1<<20)
		line := 0
		next = func() ([]string, int, error) {
			for {
				s, err := br.ReadString('\n')
				if err != nil && (err != io.EOF || s == "") {
					return nil, 0, err
				}
				line++
				s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
				if s == "" {
					continue // blank lines are skipped
				}
				return strings.Split(s, "\t"), line, nil
			}
		}
	}
	header, _, err := next()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file (want a header row naming the columns)", path)
	}
	if err != nil {
		return nil, err
	}
	header = append([]string(nil), header...)
	header[0] = strings.TrimPrefix(header[0], "\ufeff") // a byte-order mark
	fl := o.Fields
	col := func(name string) int {
		for i, h := range header {
			if strings.TrimSpace(h) == name {
				return i
			}
		}
		return -1
	}
	ti, li, si := col(fl.Text), col(fl.Label), col(fl.Split)
	if ti < 0 || li < 0 {
		return nil, fmt.Errorf("%s: the header row %q lacks the column %q or %q (set the column names with the text and label field options)", path, header, fl.Text, fl.Label)
	}
	sink := newRowSink(path)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, line, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(rec) != len(header) {
			return nil, fmt.Errorf("%s:%d: %d fields, the header has %d", path, line, len(rec), len(header))
		}
		split := ""
		if si >= 0 {
			split = rec[si]
		}
		if err := sink.add(line, rec[ti], rec[li], split, si >= 0, fl); err != nil {
			return nil, err
		}
	}
	return sink.source(format)
}

// readJSONL reads one JSON object per line; blank lines are skipped.
func readJSONL(ctx context.Context, path string, o Options) (*source, error) {
	f, r, p, err := openCounted(path, o)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	defer p.Done()
	br := bufio.NewReaderSize(r, 1<<20)
	fl := o.Fields
	sink := newRowSink(path)
	hasSplit := -1 // unknown until the first object: 1 when it has the split field
	for line := 1; ; line++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := br.ReadBytes('\n')
		if err != nil && (err != io.EOF || len(b) == 0) {
			if err == io.EOF {
				break
			}
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("%s:%d: not valid UTF-8", path, line)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			return nil, fmt.Errorf("%s:%d: not a JSON object: %v", path, line, err)
		}
		text, err := jsonString(obj, fl.Text, false)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		label, err := jsonString(obj, fl.Label, true)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		_, has := obj[fl.Split]
		if hasSplit < 0 {
			hasSplit = map[bool]int{false: 0, true: 1}[has]
		} else if has != (hasSplit == 1) {
			return nil, fmt.Errorf("%s:%d: field %q is present in some objects and missing in others", path, line, fl.Split)
		}
		split := ""
		if has {
			if split, err = jsonString(obj, fl.Split, false); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
		}
		if err := sink.add(line, text, label, split, has, fl); err != nil {
			return nil, err
		}
	}
	return sink.source("jsonl")
}

// jsonString reads a string field; with scalars, a number or a bool is taken as written.
func jsonString(obj map[string]json.RawMessage, name string, scalars bool) (string, error) {
	raw, ok := obj[name]
	if !ok {
		return "", fmt.Errorf("field %q is missing", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	if scalars {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err == nil {
			return n.String(), nil
		}
		var b bool
		if err := json.Unmarshal(raw, &b); err == nil {
			return fmt.Sprint(b), nil
		}
		return "", fmt.Errorf("field %q is %s, want a string, number or bool", name, raw)
	}
	return "", fmt.Errorf("field %q is %s, want a string", name, raw)
}
