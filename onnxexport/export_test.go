package onnxexport

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/internal/onnxpb"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/train"
)

func TestReorderGates(t *testing.T) {
	// PyTorch LSTM blocks i, f, g, o (2 values each) to ONNX's i, o, f, c.
	got := reorderGates([]float32{1, 1, 2, 2, 3, 3, 4, 4}, lstmGateOrder, 2)
	if want := []float32{1, 1, 4, 4, 2, 2, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("LSTM: got %v, want %v", got, want)
	}
	// PyTorch GRU blocks r, z, n to ONNX's z, r, h.
	got = reorderGates([]float32{1, 2, 3}, gruGateOrder, 1)
	if want := []float32{2, 1, 3}; !slices.Equal(got, want) {
		t.Errorf("GRU: got %v, want %v", got, want)
	}
}

// TestGraphWiring builds each kind's graph from a small model, binary and of 3 and 5 classes,
// and checks, after a round trip through the protobuf encoding, its inputs and outputs (names,
// types, dynamic axes; a binary model's logit and sigmoid, a K-class model's K logits and their
// softmax over the class axis) and that every node reads only values defined before it (graph
// inputs, initializers, earlier outputs).
func TestGraphWiring(t *testing.T) {
	for _, cfg := range []nn.Config{
		{Kind: nn.KindCNN, VocabSize: 50, PadID: 1, EmbedDim: 4, Filters: 3, Widths: []int{2, 3}, Outputs: 1},
		{Kind: nn.KindLSTM, VocabSize: 50, PadID: 1, EmbedDim: 4, Hidden: 3, Layers: 2, Bidirectional: true, Outputs: 1},
		{Kind: nn.KindBiGRU, PadID: -1, InputDim: 5, Hidden: 3, Layers: 2, Bidirectional: true, Outputs: 1},
		{Kind: nn.KindBiGRU, PadID: -1, InputDim: 5, Hidden: 3, Layers: 1, Bidirectional: true, Pool: nn.PoolConcat, Outputs: 1},
		{Kind: nn.KindCNN, VocabSize: 50, PadID: 1, EmbedDim: 4, Filters: 3, Widths: []int{2, 3}, Outputs: 3},
		{Kind: nn.KindLSTM, VocabSize: 50, PadID: 1, EmbedDim: 4, Hidden: 3, Layers: 1, Bidirectional: true, Outputs: 5},
		{Kind: nn.KindBiGRU, PadID: -1, InputDim: 5, Hidden: 3, Layers: 1, Bidirectional: true, Pool: nn.PoolConcat, Outputs: 3},
	} {
		m, err := nn.NewModel(nn.NewCPU(blas.Gonum{}, 1), cfg, nn.NewRNG(1))
		if err != nil {
			t.Fatal(err)
		}
		g, err := buildGraph(m)
		if err != nil {
			t.Fatalf("%s: %v", cfg.Kind, err)
		}
		b, err := proto.Marshal(&onnxpb.ModelProto{IrVersion: proto.Int64(IRVersion), Graph: g})
		if err != nil {
			t.Fatal(err)
		}
		var back onnxpb.ModelProto
		if err := proto.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		g = back.GetGraph()
		first := InputIDs
		if cfg.Kind == nn.KindBiGRU {
			first = InputFeatures
		}
		var inputs []string
		for _, in := range g.GetInput() {
			inputs = append(inputs, in.GetName())
		}
		if want := []string{first, InputLengths}; !slices.Equal(inputs, want) {
			t.Errorf("%s: inputs %v, want %v", cfg.Kind, inputs, want)
		}
		if dims := g.GetInput()[0].GetType().GetTensorType().GetShape().GetDim(); len(dims) < 2 ||
			dims[0].GetDimParam() != "batch" || dims[1].GetDimParam() != "sequence" {
			t.Errorf("%s: input %s has axes %v, want batch and sequence dynamic", cfg.Kind, first, dims)
		}
		defined := map[string]bool{}
		for _, in := range g.GetInput() {
			defined[in.GetName()] = true
		}
		for _, init := range g.GetInitializer() {
			if defined[init.GetName()] {
				t.Errorf("%s: %s defined twice", cfg.Kind, init.GetName())
			}
			defined[init.GetName()] = true
		}
		for _, n := range g.GetNode() {
			for _, in := range n.GetInput() {
				if in != "" && !defined[in] {
					t.Errorf("%s: node %s reads %s before it is defined", cfg.Kind, n.GetName(), in)
				}
			}
			for _, out := range n.GetOutput() {
				defined[out] = true
			}
		}
		prob := OutputProb
		if cfg.Outputs > 1 {
			prob = OutputProbs
		}
		var outputs []string
		for _, out := range g.GetOutput() {
			outputs = append(outputs, out.GetName())
			dims := out.GetType().GetTensorType().GetShape().GetDim()
			if len(dims) != 2 || dims[0].GetDimParam() != "batch" || dims[1].GetDimValue() != int64(cfg.Outputs) {
				t.Errorf("%s of %d outputs: output %s has axes %v, want (batch, %d)", cfg.Kind, cfg.Outputs, out.GetName(), dims, cfg.Outputs)
			}
			if !defined[out.GetName()] {
				t.Errorf("%s: no node computes the output %s", cfg.Kind, out.GetName())
			}
		}
		if want := []string{OutputLogits, prob}; !slices.Equal(outputs, want) {
			t.Errorf("%s of %d outputs: outputs %v, want %v", cfg.Kind, cfg.Outputs, outputs, want)
		}
		// The probabilities are the sigmoid of the logit, or the softmax over the class axis.
		wantOp, otherOp := "Sigmoid", "Softmax"
		if cfg.Outputs > 1 {
			wantOp, otherOp = otherOp, wantOp
		}
		var ops []*onnxpb.NodeProto
		for _, n := range g.GetNode() {
			switch n.GetOpType() {
			case wantOp:
				ops = append(ops, n)
			case otherOp:
				t.Errorf("%s of %d outputs: a %s node", cfg.Kind, cfg.Outputs, otherOp)
			}
		}
		if len(ops) != 1 {
			t.Errorf("%s of %d outputs: %d %s nodes, want 1", cfg.Kind, cfg.Outputs, len(ops), wantOp)
		} else if a := ops[0].GetAttribute(); wantOp == "Softmax" && (len(a) != 1 || a[0].GetName() != "axis" || a[0].GetI() != 1) {
			t.Errorf("%s: softmax attributes %v, want axis 1", cfg.Kind, a)
		}
	}
}

// TestSidecarClasses: a K-class model's sidecar names its classes, its outputs (K logits and
// their softmax) and its decision, and has no positive class; a binary model's keeps them.
func TestSidecarClasses(t *testing.T) {
	vocab, err := data.NewVocab([]string{"<unk>", "<pad>", "film"})
	if err != nil {
		t.Fatal(err)
	}
	info := train.RunInfo{Labels: []string{"neg", "neutral", "pos"},
		Model: nn.Config{Kind: nn.KindCNN, VocabSize: 3, PadID: 1, EmbedDim: 4, Filters: 3, Widths: []int{2}, Outputs: 3}}
	b, err := newSidecar(info, vocab, "runs/three", "best").marshal()
	if err != nil {
		t.Fatal(err)
	}
	var side map[string]any
	if err := json.Unmarshal(b, &side); err != nil {
		t.Fatal(err)
	}
	outputs, _ := side["outputs"].(map[string]any)
	if labels, _ := json.Marshal(side["labels"]); string(labels) != `["neg","neutral","pos"]` || len(outputs) != 2 ||
		!strings.Contains(fmt.Sprint(outputs[OutputProbs]), "(batch, 3): softmax(logits)") || outputs[OutputProb] != nil ||
		side["positive_class"] != nil || side["positive_label"] != nil || !strings.Contains(fmt.Sprint(side["decision"]), "argmax(logits)") {
		t.Errorf("3-class sidecar:\n%s", b)
	}

	info.Labels, info.Model.Outputs = []string{"neg", "pos"}, 1
	b, err = newSidecar(info, vocab, "runs/two", "best").marshal()
	if err != nil {
		t.Fatal(err)
	}
	side = nil
	if err := json.Unmarshal(b, &side); err != nil {
		t.Fatal(err)
	}
	if side["positive_class"] != 1.0 || side["positive_label"] != "pos" || side["outputs"].(map[string]any)[OutputProb] == nil {
		t.Errorf("binary sidecar:\n%s", b)
	}
}
