// Package tensorboard writes TensorBoard event files: scalars and a run's hyperparameters, in the
// format TensorFlow's summary writers produce and TensorBoard reads from a log directory, and
// reads such files back (for resuming a run, and for tests).
//
// An event file is a TFRecord file: a sequence of records, each
//
//	uint64 length (little endian), uint32 masked CRC-32C of the length bytes,
//	length bytes of data, uint32 masked CRC-32C of the data,
//
// where each record's data is a serialised tensorboard.Event protobuf. The first event of a file
// holds file_version "brain.Event:2"; each scalar is an event with a summary value whose
// simple_value is the number (as tf.compat.v1.summary.scalar writes it, and as TensorBoard's
// EventAccumulator.Scalars and its data server read it); the hyperparameters are a summary value
// for the HParams plugin (tag "_hparams_/session_start_info", plugin_data holding an
// HParamsPluginData with a SessionStartInfo), as tensorboard.plugins.hparams.api.hparams writes
// them.
//
// The few messages needed are encoded field by field with protowire (proto.go); the field numbers
// are those of the descriptors in the tensorboard wheel (tensorboard/compat/proto/event_pb2.py,
// summary_pb2.py, tensor_pb2.py, tensorboard/plugins/hparams/plugin_data_pb2.py and
// google/protobuf/struct_pb2.py), which ships no .proto files to generate Go types from.
//
// Steps and resuming: TensorBoard reads every event file in a directory, so a step written twice
// shows twice. A resumed run calls Resume with the last step its checkpoint covers: the events
// of later steps that the interrupted run had already written are dropped from the old files, and
// the new file takes the steps from there on. A writer never checks steps itself; the trainer
// writes each step once.
package tensorboard

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// FileVersion is the file_version of the first event of every file.
const FileVersion = "brain.Event:2"

// HParamsTag is the summary tag of the hyperparameters (the HParams plugin's session start info).
const HParamsTag = "_hparams_/session_start_info"

// Writer appends events to one event file. It is not safe for concurrent use.
type Writer struct {
	f    *os.File
	buf  *bufio.Writer
	path string
	err  error // the first write error; every later call returns it
}

// Create makes dir (and its parents) if needed and starts a new event file in it, named as
// TensorFlow names its own: events.out.tfevents.<unix seconds, 10 digits>.<hostname>, with a
// suffix .1, .2, ... if a file of that name exists. It writes the file_version event.
func Create(dir string) (*Writer, error) {
	return create(dir, time.Now())
}

func create(dir string, now time.Time) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.ReplaceAll(host, string(filepath.Separator), "_")
	base := fmt.Sprintf("events.out.tfevents.%010d.%s", now.Unix(), host)
	var f *os.File
	for n := 0; ; n++ {
		name := base
		if n > 0 {
			name = fmt.Sprintf("%s.%d", base, n)
		}
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) && n < 1000 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tensorboard: create event file: %w", err)
		}
		break
	}
	w := &Writer{f: f, buf: bufio.NewWriter(f), path: f.Name()}
	w.writeRecord(fileVersionEvent(wallTime(now)))
	if err := w.Flush(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return w, nil
}

// Resume prepares dir for a run resumed after step lastStep (the last step its checkpoint
// covers) and starts a new event file in it, as Create. Every event file already in dir that
// holds events of steps after lastStep (written by the interrupted run after its checkpoint, and
// about to be written again) is rewritten without them, atomically; a truncated last record
// (a crash mid-write) is dropped too. Events without a step (file_version, hyperparameters at
// step 0) are kept.
func Resume(dir string, lastStep int64) (*Writer, error) {
	files, err := EventFiles(dir)
	if err != nil {
		return nil, err
	}
	for _, path := range files {
		if err := truncateAfter(path, lastStep); err != nil {
			return nil, err
		}
	}
	return Create(dir)
}

// Path is the event file's path.
func (w *Writer) Path() string { return w.path }

// Scalar writes one scalar: its tag, the step, the value and the wall time (seconds since the
// Unix epoch, as time.Now gives it; the zero time means now). TensorBoard stores simple_value as
// a float32.
func (w *Writer) Scalar(tag string, step int64, value float64, at time.Time) error {
	if tag == "" {
		return w.fail(errors.New("tensorboard: scalar with an empty tag"))
	}
	if at.IsZero() {
		at = time.Now()
	}
	w.writeRecord(eventScalar(wallTime(at), step, tag, float32(value)))
	return w.err
}

// HParams writes the run's hyperparameters at step 0, for TensorBoard's HParams dashboard. A value
// is a bool, a string, or a number (any Go integer or float type, finite). groupName is the
// HParams plugin's session group (a trial id); when empty it is a hash of the values.
func (w *Writer) HParams(hparams map[string]any, groupName string, start time.Time) error {
	if start.IsZero() {
		start = time.Now()
	}
	names := make([]string, 0, len(hparams))
	for name := range hparams {
		names = append(names, name)
	}
	sort.Strings(names)
	values := make([]hparam, 0, len(names))
	for _, name := range names {
		v, err := hparamValue(hparams[name])
		if err != nil {
			return w.fail(fmt.Errorf("tensorboard: hyperparameter %q: %w", name, err))
		}
		v.name = name
		values = append(values, v)
	}
	if groupName == "" {
		groupName = derivedGroupName(values)
	}
	w.writeRecord(eventHParams(wallTime(start), values, groupName, wallTime(start)))
	return w.err
}

// Flush writes the buffered events to the file (TensorBoard sees them from then on).
func (w *Writer) Flush() error {
	if w.err == nil {
		if err := w.buf.Flush(); err != nil {
			w.err = fmt.Errorf("tensorboard: write %s: %w", w.path, err)
		}
	}
	return w.err
}

// Close flushes and syncs the events and closes the file.
func (w *Writer) Close() error {
	if w.f == nil {
		return w.err
	}
	err := w.Flush()
	if err == nil {
		if serr := w.f.Sync(); serr != nil {
			err = fmt.Errorf("tensorboard: sync %s: %w", w.path, serr)
		}
	}
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("tensorboard: close %s: %w", w.path, cerr)
	}
	w.f = nil
	if w.err == nil {
		w.err = err
	}
	return err
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

func (w *Writer) writeRecord(data []byte) {
	if w.err != nil {
		return
	}
	if _, err := w.buf.Write(frame(data)); err != nil {
		w.err = fmt.Errorf("tensorboard: write %s: %w", w.path, err)
	}
}

// wallTime is t in seconds since the Unix epoch, as Python's time.time().
func wallTime(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// ---------------------------------------------------------------------------- TFRecord framing

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's masked CRC-32C of b.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// frame is data as one TFRecord record.
func frame(data []byte) []byte {
	rec := make([]byte, 12, 16+len(data))
	binary.LittleEndian.PutUint64(rec, uint64(len(data)))
	binary.LittleEndian.PutUint32(rec[8:], maskedCRC(rec[:8]))
	rec = append(rec, data...)
	return binary.LittleEndian.AppendUint32(rec, maskedCRC(data))
}

// ErrTruncated reports a file that ends inside a record (a writer stopped mid-write).
var ErrTruncated = errors.New("truncated record")

// readRecords splits a TFRecord file's bytes into records' data, checking both CRCs of each.
// It returns the records read before a truncated end along with ErrTruncated (wrapped), and
// stops with an error at a CRC mismatch.
func readRecords(b []byte) ([][]byte, error) {
	var recs [][]byte
	for off := 0; off < len(b); {
		if len(b)-off < 12 {
			return recs, fmt.Errorf("record at byte %d: %w", off, ErrTruncated)
		}
		head := b[off : off+8]
		if got, want := binary.LittleEndian.Uint32(b[off+8:]), maskedCRC(head); got != want {
			return recs, fmt.Errorf("record at byte %d: length CRC %08x, computed %08x", off, got, want)
		}
		n := binary.LittleEndian.Uint64(head)
		if n > uint64(len(b)-off-12) || uint64(len(b)-off-12)-n < 4 {
			return recs, fmt.Errorf("record at byte %d (%d bytes of data): %w", off, n, ErrTruncated)
		}
		data := b[off+12 : off+12+int(n)]
		if got, want := binary.LittleEndian.Uint32(b[off+12+int(n):]), maskedCRC(data); got != want {
			return recs, fmt.Errorf("record at byte %d: data CRC %08x, computed %08x", off, got, want)
		}
		recs = append(recs, data)
		off += 16 + int(n)
	}
	return recs, nil
}

// ---------------------------------------------------------------------------- reading back

// Event is what this package reads back from an event.
type Event struct {
	WallTime    float64
	Step        int64
	FileVersion string
	Scalars     []Scalar // the summary's simple values
	// HParams holds the hyperparameters of an HParams session-start event (nil otherwise):
	// float64, string or bool values.
	HParams   map[string]any
	GroupName string
}

// Scalar is one summary value with a simple_value.
type Scalar struct {
	Tag   string
	Value float32
}

// ReadFile reads every event of an event file, checking the records' CRCs. A file that ends
// inside a record gives the events before it and an error wrapping ErrTruncated.
func ReadFile(path string) ([]Event, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	recs, rerr := readRecords(b)
	events := make([]Event, 0, len(recs))
	for i, data := range recs {
		ev, err := parseEvent(data)
		if err != nil {
			return events, fmt.Errorf("tensorboard: %s: event %d: %w", path, i, err)
		}
		events = append(events, ev)
	}
	if rerr != nil {
		return events, fmt.Errorf("tensorboard: %s: %w", path, rerr)
	}
	return events, nil
}

// EventFiles lists the event files of dir (names containing "tfevents", as TensorBoard picks
// them, without hidden files), in name order, which is the order they were created in. A
// missing dir has none.
func EventFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.Contains(e.Name(), "tfevents") && !strings.HasPrefix(e.Name(), ".") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	return files, nil
}

// truncateAfter rewrites the event file at path without its events of steps after lastStep and
// without a truncated last record, if it has either; the new file replaces the old by a rename.
func truncateAfter(path string, lastStep int64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("tensorboard: resume: %w", err)
	}
	recs, rerr := readRecords(b)
	if rerr != nil && !errors.Is(rerr, ErrTruncated) {
		return fmt.Errorf("tensorboard: resume: %s: %w", path, rerr)
	}
	var keep []byte
	dropped := rerr != nil
	for i, data := range recs {
		ev, err := parseEvent(data)
		if err != nil {
			return fmt.Errorf("tensorboard: resume: %s: event %d: %w", path, i, err)
		}
		if ev.Step > lastStep {
			dropped = true
			continue
		}
		keep = append(keep, frame(data)...)
	}
	if !dropped {
		return nil
	}
	// The temporary name lacks "tfevents", so that TensorBoard never reads it.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tb-resume-*")
	if err != nil {
		return fmt.Errorf("tensorboard: resume: %w", err)
	}
	_, err = tmp.Write(keep)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("tensorboard: resume: rewrite %s: %w", path, err)
	}
	return nil
}

// isFinite reports whether a hyperparameter number can be written (JSON, like the group name's
// derivation, has no NaN or infinities).
func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
