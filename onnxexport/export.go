// Package onnxexport writes a finished sentibench run as an ONNX model that ONNX Runtime (or
// any ONNX runtime) runs in any language, with a sidecar JSON that says how to tokenize a text
// exactly as sentibench does and what the outputs mean.
//
// The graphs compute what the models compute in eval mode (dropout off):
//   - cnn: embedding lookup, Conv1d of each width, max over time of the windows inside each
//     text's length (a text shorter than the widest filter padded with the padding id, as the
//     model does), ReLU, concatenation, linear;
//   - lstm: embedding lookup, the ONNX LSTM op layer by layer with sequence_lens (PyTorch's
//     packed sequences: padding changes nothing), the top layer's final states [forward |
//     backward], linear;
//   - bigru: the head over the encoder's features: the ONNX GRU op (linear_before_reset = 1, as
//     PyTorch's GRU) layer by layer with sequence_lens, the final states (and with --pool concat
//     the mean and max over each text's length of the top layer's outputs), linear.
//
// Every graph has dynamic batch and sequence axes, takes the lengths as an input and outputs the
// logits and, for a binary model, their sigmoid, the probability of the positive class
// ("probability"), for a model of K > 2 classes their softmax, every class's probability
// ("probabilities"; the sidecar names the classes). The weights are read from the
// run's checkpoint; the ONNX protobuf is written with the Go types generated from ONNX's own
// onnx.proto (internal/onnxpb).
package onnxexport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/atomicfile"
	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/internal/onnxpb"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/train"
)

// The ONNX versions the files target: opset 17 (ONNX 1.12, 2022) and its IR version 8, which
// every ONNX Runtime since 1.12 runs.
const (
	Opset     = 17
	IRVersion = 8
)

// SidecarSuffix is appended to the model's path to name the sidecar JSON (model.onnx.json).
const SidecarSuffix = ".json"

// Options say what to export.
type Options struct {
	// Checkpoint is "best" (default) or "last".
	Checkpoint string
	// Producer is the version recorded as the file's producer_version (the CLI's version).
	Producer string
}

// Export is a run's model as ONNX, with its sidecar.
type Export struct {
	Model   *onnxpb.ModelProto
	Sidecar *Sidecar
}

// FromRun builds the ONNX model of the run in dir.
func FromRun(dir string, o Options) (*Export, error) {
	info, err := train.ReadRunInfo(dir)
	if err != nil {
		return nil, err // names the run directory or its config.json
	}
	ck, err := checkpointDir(dir, o.Checkpoint)
	if err != nil {
		return nil, err
	}
	// The device only has to exist: nothing is computed.
	m, err := nn.NewModel(nn.NewCPU(blas.Gonum{}, 1), info.Model, nn.NewRNG(0))
	if err != nil {
		return nil, fmt.Errorf("onnxexport: %s: %w", dir, err)
	}
	if err := nn.LoadWeights(filepath.Join(ck, train.WeightsFile), m); err != nil {
		return nil, fmt.Errorf("onnxexport: %w", err)
	}
	var vocab *data.Vocab
	if info.Model.Kind != nn.KindBiGRU {
		p := filepath.Join(dir, train.VocabFile)
		if vocab, err = data.LoadVocab(p); err != nil {
			return nil, fmt.Errorf("onnxexport: %w", err)
		}
		if vocab.Len() != info.Model.VocabSize {
			return nil, fmt.Errorf("onnxexport: %s has %d words, the model %d", p, vocab.Len(), info.Model.VocabSize)
		}
	}
	g, err := buildGraph(m)
	if err != nil {
		return nil, fmt.Errorf("onnxexport: %s: %w", dir, err)
	}
	g.DocString = proto.String(fmt.Sprintf("sentibench %s model of run %s (checkpoint %s)", info.Model.Kind, filepath.Base(dir), filepath.Base(ck)))
	model := &onnxpb.ModelProto{
		IrVersion:       proto.Int64(IRVersion),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}},
		ProducerName:    proto.String("sentibench"),
		ProducerVersion: proto.String(o.Producer),
		Graph:           g,
	}
	return &Export{Model: model, Sidecar: newSidecar(info, vocab, dir, filepath.Base(ck))}, nil
}

// checkpointDir is the run's checkpoint directory name ("best" or "last"), or the previous one
// (name.old) that a run interrupted while replacing it leaves, as train.Load reads it.
func checkpointDir(dir, name string) (string, error) {
	switch name {
	case "":
		name = train.BestDir
	case train.BestDir, train.LastDir:
	default:
		return "", fmt.Errorf("onnxexport: unknown checkpoint %q (want best or last)", name)
	}
	for _, p := range []string{filepath.Join(dir, name), filepath.Join(dir, name+".old")} {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("onnxexport: %s: no checkpoint", filepath.Join(dir, name))
}

// Write writes the model to path and the sidecar to path+SidecarSuffix, each atomically: both are
// written in full to temporary files before either replaces anything, so a failed write leaves
// no file behind and a file that exists is whole. The sidecar is put in place first.
func (e *Export) Write(path string) error {
	if path == "" {
		return errors.New("onnxexport: no output path")
	}
	e.Sidecar.ModelFile = filepath.Base(path)
	b, err := proto.Marshal(e.Model)
	if err != nil {
		return fmt.Errorf("onnxexport: encoding the model: %w", err)
	}
	side, err := e.Sidecar.marshal()
	if err != nil {
		return err
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("onnxexport: %s is a directory (give the model file's path)", path)
	}
	// Both files are written in full (to temporary files) before either is put in place.
	var files []*atomicfile.File
	defer func() {
		for _, f := range files {
			f.Abort()
		}
	}()
	for _, c := range []struct {
		path string
		data []byte
	}{{path + SidecarSuffix, side}, {path, b}} {
		f, err := atomicfile.Create(c.path)
		if err != nil {
			return fmt.Errorf("onnxexport: %w", err)
		}
		files = append(files, f)
		if _, err := f.Write(c.data); err != nil {
			return fmt.Errorf("onnxexport: write %s: %w", c.path, err)
		}
	}
	for _, f := range files {
		if err := f.Commit(); err != nil {
			return fmt.Errorf("onnxexport: %w", err)
		}
	}
	return nil
}
