package nn

// Weights and optimiser state to and from safetensors, with PyTorch's names and shapes: a file
// written here loads into torch_ref.py's models with load_state_dict(strict=True), and a
// PyTorch state_dict saved with safetensors.torch.save_file loads here.

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sentibench/sentibench/internal/safetensors"
)

// ParamTensors returns the parameters as F32 tensors named and shaped as PyTorch's state_dict.
func ParamTensors(params []*Param) []safetensors.Tensor {
	out := make([]safetensors.Tensor, 0, len(params))
	for _, p := range params {
		out = append(out, safetensors.FromFloat32(p.Name, p.Shape, p.Data()))
	}
	return out
}

// SaveWeights writes the model's parameters to path (atomically) with the given metadata.
func SaveWeights(path string, m Model, metadata map[string]string) error {
	if err := safetensors.WriteFile(path, ParamTensors(m.Params()), metadata); err != nil {
		return fmt.Errorf("nn: saving the %s model's weights: %w", m.Config().Kind, err)
	}
	return nil
}

// LoadParams sets the parameters from f, strictly: every parameter must be in the file with its
// shape and a floating-point dtype (F32, or F16/BF16/F64, converted), and the file must hold
// nothing else (as PyTorch's load_state_dict(strict=True)). Nothing is changed on error.
func LoadParams(f *safetensors.File, params []*Param) error {
	want := map[string]*Param{}
	var missing, wrong []string
	for _, p := range params {
		want[p.Name] = p
		info, ok := f.Tensors[p.Name]
		switch {
		case !ok:
			missing = append(missing, p.Name)
		case !sameDims(info.Shape, p.Shape):
			wrong = append(wrong, fmt.Sprintf("%s has shape %v in the file, %v in the model", p.Name, info.Shape, p.Shape))
		case info.DType != safetensors.F32 && info.DType != safetensors.F16 && info.DType != safetensors.BF16 && info.DType != safetensors.F64:
			wrong = append(wrong, fmt.Sprintf("%s has dtype %s, want a floating-point type", p.Name, info.DType))
		}
	}
	var unexpected []string
	for name := range f.Tensors {
		if want[name] == nil {
			unexpected = append(unexpected, name)
		}
	}
	sort.Strings(unexpected)
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "missing: "+strings.Join(missing, ", "))
	}
	if len(unexpected) > 0 {
		problems = append(problems, "unexpected: "+strings.Join(unexpected, ", "))
	}
	problems = append(problems, wrong...)
	if len(problems) > 0 {
		return fmt.Errorf("nn: %s does not match the model's parameters (%s)", f.Path(), strings.Join(problems, "; "))
	}
	values := make([][]float32, len(params))
	for i, p := range params {
		v, err := f.Float32(p.Name, p.Shape...)
		if err != nil {
			return fmt.Errorf("nn: %w", err)
		}
		values[i] = v
	}
	for i, p := range params {
		copy(p.Data(), values[i])
	}
	return nil
}

// LoadWeights loads a model's parameters from the safetensors file at path (see LoadParams).
func LoadWeights(path string, m Model) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return fmt.Errorf("nn: loading weights: %w", err)
	}
	defer f.Close()
	return LoadParams(f, m.Params())
}

func sameDims(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The tensor names of Adam's state for parameter p: p+".exp_avg", p+".exp_avg_sq" (F32, the
// parameter's shape flattened) and p+".step" (I64, one value).
const (
	adamExpAvg   = ".exp_avg"
	adamExpAvgSq = ".exp_avg_sq"
	adamStep     = ".step"
)

// AdamStateTensors returns Adam's state as safetensors tensors (see SetState for the reverse).
func AdamStateTensors(s map[string]AdamParamState) []safetensors.Tensor {
	names := make([]string, 0, len(s))
	for name := range s {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []safetensors.Tensor
	for _, name := range names {
		st := s[name]
		out = append(out,
			safetensors.FromFloat32(name+adamExpAvg, []int{len(st.ExpAvg)}, st.ExpAvg),
			safetensors.FromFloat32(name+adamExpAvgSq, []int{len(st.ExpAvgSq)}, st.ExpAvgSq),
			safetensors.FromInt64(name+adamStep, []int{1}, []int64{st.Step}))
	}
	return out
}

// AdamStateFromFile reads Adam's state written with AdamStateTensors. Every parameter needs its
// three tensors; the sizes are checked against the parameters by Adam.SetState.
func AdamStateFromFile(f *safetensors.File) (map[string]AdamParamState, error) {
	s := map[string]AdamParamState{}
	for name := range f.Tensors {
		base, ok := strings.CutSuffix(name, adamStep)
		if !ok {
			continue
		}
		steps, err := f.Int64(name)
		if err != nil {
			return nil, fmt.Errorf("nn: adam state: %w", err)
		}
		if len(steps) != 1 {
			return nil, fmt.Errorf("nn: adam state: %s: %s has %d values, want 1", f.Path(), name, len(steps))
		}
		m, err := f.Float32(base + adamExpAvg)
		if err != nil {
			return nil, fmt.Errorf("nn: adam state: %w", err)
		}
		v, err := f.Float32(base + adamExpAvgSq)
		if err != nil {
			return nil, fmt.Errorf("nn: adam state: %w", err)
		}
		s[base] = AdamParamState{Step: steps[0], ExpAvg: m, ExpAvgSq: v}
	}
	for name := range f.Tensors {
		base, ok := strings.CutSuffix(name, adamExpAvgSq)
		if !ok {
			base, ok = strings.CutSuffix(name, adamExpAvg)
		}
		if _, done := s[base]; ok && !done {
			return nil, fmt.Errorf("nn: adam state: %s: %s has no %s", f.Path(), name, base+adamStep)
		}
	}
	return s, nil
}
