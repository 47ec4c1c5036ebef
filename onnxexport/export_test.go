package onnxexport

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/internal/onnxpb"
	"github.com/sentibench/sentibench/nn"
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

// TestGraphWiring builds each kind's graph from a small model and checks, after a round trip
// through the protobuf encoding, its inputs and outputs (names, types, dynamic axes) and that
// every node reads only values defined before it (graph inputs, initializers, earlier outputs).
func TestGraphWiring(t *testing.T) {
	for _, cfg := range []nn.Config{
		{Kind: nn.KindCNN, VocabSize: 50, PadID: 1, EmbedDim: 4, Filters: 3, Widths: []int{2, 3}, Outputs: 1},
		{Kind: nn.KindLSTM, VocabSize: 50, PadID: 1, EmbedDim: 4, Hidden: 3, Layers: 2, Bidirectional: true, Outputs: 1},
		{Kind: nn.KindBiGRU, PadID: -1, InputDim: 5, Hidden: 3, Layers: 2, Bidirectional: true, Outputs: 1},
		{Kind: nn.KindBiGRU, PadID: -1, InputDim: 5, Hidden: 3, Layers: 1, Bidirectional: true, Pool: nn.PoolConcat, Outputs: 1},
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
		for _, out := range []string{OutputLogits, OutputProb} {
			if !defined[out] {
				t.Errorf("%s: no node computes the output %s", cfg.Kind, out)
			}
		}
	}
}
