package onnxexport

import (
	"fmt"

	"github.com/sentibench/sentibench/internal/onnxpb"
	"github.com/sentibench/sentibench/nn"
)

// The ONNX element types the graphs use.
const (
	tFloat = onnxpb.TensorProto_FLOAT
	tInt64 = onnxpb.TensorProto_INT64
	tInt32 = onnxpb.TensorProto_INT32
	tBool  = onnxpb.TensorProto_BOOL
)

// The names of the graphs' inputs and outputs (the sidecar JSON describes them too).
const (
	InputIDs      = "input_ids"
	InputFeatures = "features"
	InputLengths  = "lengths"
	OutputLogits  = "logits"
	// OutputProb is a binary model's output: sigmoid(logit), the probability of class 1.
	OutputProb = "probability"
	// OutputProbs is a K-class model's output: the softmax of its K logits, every class's
	// probability.
	OutputProbs = "probabilities"
)

// params indexes a model's parameters by their PyTorch names.
type params map[string]*nn.Param

func paramsOf(m nn.Model) params {
	ps := params{}
	for _, p := range m.Params() {
		ps[p.Name] = p
	}
	return ps
}

// get returns the named parameter, or an error naming it (a model whose layout the exporter
// does not know).
func (ps params) get(name string) (*nn.Param, error) {
	p, ok := ps[name]
	if !ok {
		return nil, fmt.Errorf("the model has no parameter %q", name)
	}
	return p, nil
}

// buildGraph returns the ONNX graph of a model in eval mode (dropout off): its logits and their
// sigmoid (a binary model's one logit: OutputProb) or softmax (a K-class model's K logits:
// OutputProbs).
func buildGraph(m nn.Model) (*onnxpb.GraphProto, error) {
	cfg := m.Config()
	if cfg.Outputs < 1 {
		return nil, fmt.Errorf("the model has %d outputs", cfg.Outputs)
	}
	b := newGraph("sentibench_" + cfg.Kind)
	ps := paramsOf(m)
	var (
		h   string // the classifier's input, (batch, width)
		err error
	)
	switch cfg.Kind {
	case nn.KindCNN:
		h, err = cnnFeatures(b, cfg, ps)
	case nn.KindLSTM:
		h, err = lstmFeatures(b, cfg, ps)
	case nn.KindBiGRU:
		h, err = gruFeatures(b, cfg, ps)
	default:
		err = fmt.Errorf("unknown model %q", cfg.Kind)
	}
	if err != nil {
		return nil, err
	}
	// fc: logits = h fc.weight^T + fc.bias; probability = sigmoid(logits), or probabilities =
	// softmax(logits) over the K classes.
	w, err := ps.get("fc.weight")
	if err != nil {
		return nil, err
	}
	bias, err := ps.get("fc.bias")
	if err != nil {
		return nil, err
	}
	logits := b.op("Gemm", "fc", []string{h, b.floats(w.Name, w.Shape, w.Data()), b.floats(bias.Name, bias.Shape, bias.Data())},
		attrInt("transB", 1))
	b.rename(logits, OutputLogits)
	if cfg.Outputs == 1 {
		b.rename(b.op("Sigmoid", "sigmoid", []string{logits}), OutputProb)
		b.output(OutputLogits, tFloat, "the classifier's logit per text", dynamic("batch"), fixed(1))
		b.output(OutputProb, tFloat, "sigmoid(logit): the probability of the positive class (class 1)", dynamic("batch"), fixed(1))
		return b.g, nil
	}
	b.rename(b.op("Softmax", "softmax", []string{logits}, attrInt("axis", 1)), OutputProbs)
	b.output(OutputLogits, tFloat, "the classifier's logits per text, one per class", dynamic("batch"), fixed(cfg.Outputs))
	b.output(OutputProbs, tFloat, "softmax(logits): the probability of each class, in class id order", dynamic("batch"), fixed(cfg.Outputs))
	return b.g, nil
}

// wordInputs declares the inputs of a word model and returns the token ids with every position
// at or past its sequence's length replaced by the padding id, so that whatever a caller pads
// with changes nothing.
func wordInputs(b *graph, cfg nn.Config) (ids, lengths string) {
	ids = b.input(InputIDs, tInt64, "token ids, (batch, sequence), row b padded past lengths[b] (with the padding id, or anything in the vocabulary)",
		dynamic("batch"), dynamic("sequence"))
	lengths = b.input(InputLengths, tInt64, "each text's number of tokens, (batch), in [1, sequence]", dynamic("batch"))
	real := b.stepMask(ids, 1, lengths, batchMajor)
	ids = b.op("Where", "mask_padding", []string{real, ids, b.scalar(int64(max(cfg.PadID, 0)))})
	return ids, lengths
}

// layout says whether a sequence tensor's first axis is the batch or time.
type layout int

const (
	batchMajor layout = iota // (batch, time, ...)
	timeMajor                // (time, batch, ...)
)

// stepMask returns a bool tensor that is true where the step index is below lengths: (batch,
// time) for batchMajor, (time, batch) for timeMajor; the number of steps is x's size along
// timeAxis.
func (b *graph) stepMask(x string, timeAxis int, lengths string, l layout) string {
	shape := b.op("Shape", "steps_shape", []string{x})
	steps := b.op("Gather", "steps", []string{shape, b.scalar(int64(timeAxis))})
	pos := b.op("Range", "positions", []string{b.scalar(0), steps, b.scalar(1)})
	posAxis, lenAxis := int64(0), int64(1) // positions as a row, lengths as a column
	if l == timeMajor {
		posAxis, lenAxis = 1, 0
	}
	posT := b.op("Unsqueeze", "positions", []string{pos, b.vector(posAxis)})
	lenT := b.op("Unsqueeze", "lengths", []string{lengths, b.vector(lenAxis)})
	return b.op("Less", "step_mask", []string{posT, lenT})
}

// embed looks the ids up in embedding.weight: (batch, sequence, dim).
func embed(b *graph, ps params, ids string) (string, error) {
	w, err := ps.get("embedding.weight")
	if err != nil {
		return "", err
	}
	return b.op("Gather", "embedding", []string{b.floats(w.Name, w.Shape, w.Data()), ids}, attrInt("axis", 0)), nil
}

// cnnFeatures is nn.CNNClassifier up to the classifier: for each width w, Conv1d, max over the
// windows that lie inside max(length, widest filter) (a shorter text counts as padded with the
// padding id, as the model pads it), ReLU; the widths' outputs side by side.
func cnnFeatures(b *graph, cfg nn.Config, ps params) (string, error) {
	ids, lengths := wordInputs(b, cfg)
	maxW := 0
	for _, w := range cfg.Widths {
		maxW = max(maxW, w)
	}
	padID := b.scalar(int64(max(cfg.PadID, 0)))
	// maxW-1 more padding positions: every width then has a window at every step, and a text
	// shorter than the widest filter has its padding to read.
	ids = b.op("Pad", "pad_to_widest_filter", []string{ids, b.vector(0, 0, 0, int64(maxW-1)), padID})
	x, err := embed(b, ps, ids)
	if err != nil {
		return "", err
	}
	x = b.op("Transpose", "to_channels", []string{x}, attrInts("perm", 0, 2, 1)) // (batch, dim, steps)
	eff := b.op("Max", "effective_length", []string{lengths, b.scalar(int64(maxW))})
	negInf := b.negInf("minus_inf")
	var pooled []string
	for i, w := range cfg.Widths {
		wt, err := ps.get(fmt.Sprintf("convs.%d.weight", i))
		if err != nil {
			return "", err
		}
		bias, err := ps.get(fmt.Sprintf("convs.%d.bias", i))
		if err != nil {
			return "", err
		}
		name := fmt.Sprintf("conv%d", i)
		conv := b.op("Conv", name, []string{x, b.floats(wt.Name, wt.Shape, wt.Data()), b.floats(bias.Name, bias.Shape, bias.Data())},
			attrInts("kernel_shape", int64(w)))
		windows := b.op("Sub", name+"_windows", []string{eff, b.scalar(int64(w - 1))})
		valid := b.stepMask(conv, 2, windows, batchMajor)
		valid = b.op("Unsqueeze", name+"_valid", []string{valid, b.vector(1)})
		masked := b.op("Where", name+"_masked", []string{valid, conv, negInf})
		maxed := b.op("ReduceMax", name+"_max_over_time", []string{masked}, attrInts("axes", 2), attrInt("keepdims", 0))
		pooled = append(pooled, b.op("Relu", name+"_relu", []string{maxed}))
	}
	if len(pooled) == 1 {
		return pooled[0], nil
	}
	return b.op("Concat", "widths", pooled, attrInt("axis", 1)), nil
}

// lstmFeatures is nn.LSTMClassifier up to the classifier: the embedded ids through the ONNX LSTM
// op layer by layer with sequence_lens (each sequence stops at its length, the backward
// direction starts at its last token), and the top layer's final states [forward | backward].
func lstmFeatures(b *graph, cfg nn.Config, ps params) (string, error) {
	ids, lengths := wordInputs(b, cfg)
	x, err := embed(b, ps, ids)
	if err != nil {
		return "", err
	}
	x = b.op("Transpose", "time_major", []string{x}, attrInts("perm", 1, 0, 2))
	_, final, err := rnnStack(b, "LSTM", cfg, ps, x, lengths)
	return final, err
}

// gruFeatures is nn.GRUClassifier up to the classifier: the features through the ONNX GRU op
// (linear_before_reset, as PyTorch's GRU) layer by layer with sequence_lens, and the top layer's
// final states [forward | backward], followed with Pool = concat by the mean and the max over
// each sequence's true length of the top layer's outputs.
func gruFeatures(b *graph, cfg nn.Config, ps params) (string, error) {
	feats := b.input(InputFeatures, tFloat, "the encoder's features, (batch, sequence, input_dim), zero or anything past lengths[b]",
		dynamic("batch"), dynamic("sequence"), fixed(cfg.InputDim))
	lengths := b.input(InputLengths, tInt64, "each text's number of word pieces ([CLS] and [SEP] included), (batch), in [1, sequence]", dynamic("batch"))
	x := b.op("Transpose", "time_major", []string{feats}, attrInts("perm", 1, 0, 2))
	seq, final, err := rnnStack(b, "GRU", cfg, ps, x, lengths)
	if err != nil || cfg.Pool != nn.PoolConcat {
		return final, err
	}
	// seq is (time, batch, width); mean and max over the steps below each length.
	valid := b.stepMask(seq, 0, lengths, timeMajor)
	valid = b.op("Unsqueeze", "pool_valid", []string{valid, b.vector(2)})
	zeroed := b.op("Where", "pool_zeroed", []string{valid, seq, b.floats("zero", nil, []float32{0})})
	sum := b.op("ReduceSum", "pool_sum", []string{zeroed, b.vector(0)}, attrInt("keepdims", 0))
	n := b.op("Cast", "pool_count", []string{lengths}, attrInt("to", int64(tFloat)))
	n = b.op("Unsqueeze", "pool_count", []string{n, b.vector(1)})
	mean := b.op("Div", "pool_mean", []string{sum, n})
	masked := b.op("Where", "pool_masked", []string{valid, seq, b.negInf("pool_minus_inf")})
	mx := b.op("ReduceMax", "pool_max", []string{masked}, attrInts("axes", 0), attrInt("keepdims", 0))
	return b.op("Concat", "concat_pool", []string{final, mean, mx}, attrInt("axis", 1)), nil
}

// Gate orders: PyTorch's blocks of rows, and the ONNX op's. gateOrder[k] is the PyTorch block
// that becomes ONNX block k.
var (
	// LSTM: PyTorch i, f, g, o; ONNX i, o, f, c.
	lstmGateOrder = []int{0, 3, 1, 2}
	// GRU: PyTorch r, z, n; ONNX z, r, h.
	gruGateOrder = []int{1, 0, 2}
)

// rnnStack adds cfg.Layers layers of op ("LSTM" or "GRU") over x, (time, batch, in), and returns
// the top layer's outputs, (time, batch, dirs*hidden), and its final states, (batch,
// dirs*hidden), [forward | backward].
func rnnStack(b *graph, op string, cfg nn.Config, ps params, x, lengths string) (seq, final string, err error) {
	order := lstmGateOrder
	if op == "GRU" {
		order = gruGateOrder
	}
	dirs, direction := 1, "forward"
	if cfg.Bidirectional {
		dirs, direction = 2, "bidirectional"
	}
	H, G := cfg.Hidden, len(order)
	seqLens := b.op("Cast", "sequence_lens", []string{lengths}, attrInt("to", int64(tInt32)))
	merge := b.vector(0, 0, -1)
	var yh string
	for l := 0; l < cfg.Layers; l++ {
		var W, R, B []float32
		in := 0
		for d := 0; d < dirs; d++ {
			sfx := fmt.Sprintf("_l%d", l)
			if d == 1 {
				sfx += "_reverse"
			}
			var p [4]*nn.Param
			for i, name := range []string{"weight_ih", "weight_hh", "bias_ih", "bias_hh"} {
				if p[i], err = ps.get("rnn." + name + sfx); err != nil {
					return "", "", err
				}
			}
			in = p[0].Shape[1]
			W = append(W, reorderGates(p[0].Data(), order, H*in)...)
			R = append(R, reorderGates(p[1].Data(), order, H*H)...)
			B = append(B, reorderGates(p[2].Data(), order, H)...)
			B = append(B, reorderGates(p[3].Data(), order, H)...)
		}
		name := fmt.Sprintf("%s_l%d", op, l)
		attrs := []*onnxpb.AttributeProto{attrInt("hidden_size", int64(H)), attrString("direction", direction)}
		if op == "GRU" {
			attrs = append(attrs, attrInt("linear_before_reset", 1)) // PyTorch: r * (W_hn h + b_hn)
		}
		outs := b.node(op, name, []string{
			x,
			b.floats(name+".W", []int{dirs, G * H, in}, W),
			b.floats(name+".R", []int{dirs, G * H, H}, R),
			b.floats(name+".B", []int{dirs, 2 * G * H}, B),
			seqLens,
		}, 2, attrs...)
		// Y is (time, dirs, batch, H): to (time, batch, dirs*H), the next layer's input.
		y := b.op("Transpose", name+"_outputs", []string{outs[0]}, attrInts("perm", 0, 2, 1, 3))
		x = b.op("Reshape", name+"_outputs", []string{y, merge})
		yh = outs[1]
	}
	// Y_h is (dirs, batch, H): to (batch, dirs*H).
	final = b.op("Transpose", "final_states", []string{yh}, attrInts("perm", 1, 0, 2))
	final = b.op("Reshape", "final_states", []string{final, b.vector(0, -1)})
	return x, final, nil
}

// reorderGates returns a copy of w, len(order) blocks of blockSize values, with block k taken
// from block order[k] of w.
func reorderGates(w []float32, order []int, blockSize int) []float32 {
	out := make([]float32, 0, len(w))
	for _, k := range order {
		out = append(out, w[k*blockSize:(k+1)*blockSize]...)
	}
	return out
}
