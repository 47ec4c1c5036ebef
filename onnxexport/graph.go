package onnxexport

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/sentibench/sentibench/internal/onnxpb"
)

// graph builds an ONNX GraphProto: named initializers (weights, constants) and nodes, each
// node's outputs named after it so that the file reads well in a viewer (Netron, say).
type graph struct {
	g      *onnxpb.GraphProto
	names  map[string]int    // how often a node name has been used
	consts map[string]string // int64 constants already added, by shape and values
}

func newGraph(name string) *graph {
	return &graph{g: &onnxpb.GraphProto{Name: proto.String(name)}, names: map[string]int{}, consts: map[string]string{}}
}

// dim is one axis of a graph input or output: a fixed size or a named dynamic one.
type dim struct {
	size  int64
	param string // non-empty: a dynamic axis with this name ("batch", "sequence")
}

func fixed(n int) dim         { return dim{size: int64(n)} }
func dynamic(name string) dim { return dim{param: name} }

func valueInfo(name string, elem onnxpb.TensorProto_DataType, doc string, dims ...dim) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		sd := &onnxpb.TensorShapeProto_Dimension{}
		if d.param != "" {
			sd.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.param}
		} else {
			sd.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.size}
		}
		shape.Dim = append(shape.Dim, sd)
	}
	return &onnxpb.ValueInfoProto{
		Name:      proto.String(name),
		DocString: proto.String(doc),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(elem)),
			Shape:    shape,
		}}},
	}
}

// input declares a graph input and returns its name.
func (b *graph) input(name string, elem onnxpb.TensorProto_DataType, doc string, dims ...dim) string {
	b.g.Input = append(b.g.Input, valueInfo(name, elem, doc, dims...))
	return name
}

// output declares value as a graph output under its own name.
func (b *graph) output(name string, elem onnxpb.TensorProto_DataType, doc string, dims ...dim) {
	b.g.Output = append(b.g.Output, valueInfo(name, elem, doc, dims...))
}

// floats adds a float32 initializer of the given shape and returns its name.
func (b *graph) floats(name string, shape []int, values []float32) string {
	if n := product(shape); n != len(values) {
		panic(fmt.Sprintf("onnxexport: initializer %s: %d values for shape %v", name, len(values), shape))
	}
	b.g.Initializer = append(b.g.Initializer, &onnxpb.TensorProto{
		Name:      proto.String(name),
		DataType:  proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
		Dims:      int64s(shape),
		FloatData: values,
	})
	return name
}

// ints adds an int64 initializer of the given shape (nil: a scalar) and returns its name.
func (b *graph) ints(name string, shape []int, values ...int64) string {
	if n := product(shape); n != len(values) {
		panic(fmt.Sprintf("onnxexport: initializer %s: %d values for shape %v", name, len(values), shape))
	}
	b.g.Initializer = append(b.g.Initializer, &onnxpb.TensorProto{
		Name:      proto.String(name),
		DataType:  proto.Int32(int32(onnxpb.TensorProto_INT64)),
		Dims:      int64s(shape),
		Int64Data: values,
	})
	return name
}

// scalar returns an int64 scalar constant (added once).
func (b *graph) scalar(v int64) string { return b.constant(nil, v) }

// vector returns an int64 1-D constant (added once).
func (b *graph) vector(v ...int64) string { return b.constant([]int{len(v)}, v...) }

func (b *graph) constant(shape []int, v ...int64) string {
	key := fmt.Sprint(shape, v)
	if name, ok := b.consts[key]; ok {
		return name
	}
	name := fmt.Sprintf("const_%d", len(b.consts))
	b.consts[key] = name
	return b.ints(name, shape, v...)
}

// negInf adds the float32 scalar -Inf (the value masked positions take before a max).
func (b *graph) negInf(name string) string {
	return b.floats(name, nil, []float32{float32(math.Inf(-1))})
}

// node adds an operator with nOut outputs and returns their names (name/0, name/1, ...; an
// empty input name is an omitted optional input).
func (b *graph) node(op, name string, inputs []string, nOut int, attrs ...*onnxpb.AttributeProto) []string {
	b.names[name]++
	if k := b.names[name]; k > 1 {
		name = fmt.Sprintf("%s_%d", name, k)
	}
	outs := make([]string, nOut)
	for i := range outs {
		outs[i] = fmt.Sprintf("%s/%d", name, i)
	}
	b.g.Node = append(b.g.Node, &onnxpb.NodeProto{
		Name:      proto.String(name),
		OpType:    proto.String(op),
		Input:     inputs,
		Output:    outs,
		Attribute: attrs,
	})
	return outs
}

// op adds an operator with one output and returns its name.
func (b *graph) op(op, name string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	return b.node(op, name, inputs, 1, attrs...)[0]
}

// rename adds an Identity so that value is available under a graph output's name.
func (b *graph) rename(value, name string) {
	b.g.Node = append(b.g.Node, &onnxpb.NodeProto{
		Name:   proto.String(name),
		OpType: proto.String("Identity"),
		Input:  []string{value},
		Output: []string{name},
	})
}

func attrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func attrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func attrString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

func int64s(xs []int) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(x)
	}
	return out
}

func product(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
