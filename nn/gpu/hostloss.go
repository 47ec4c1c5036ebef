package gpu

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sentibench/sentibench/nn"
)

// hostLoss runs an nn.Loss on logits (B x O) on the host, as nn.Runner would after the forward
// pass: the loss's value, its gradient with respect to the logits when grad is set, and the
// per-example losses when the loss reports them. It serves losses the device has no kernel for
// (distillation's) and evaluation.
func hostLoss(loss nn.Loss, logits []float32, B, O int, grad bool) (val float64, dz, per []float32, err error) {
	defer func() { // Gorgonia panics on some errors; return them.
		if p := recover(); p != nil {
			err = fmt.Errorf("gpu: the loss on the host: %v", p)
		}
	}()
	if len(logits) != B*O {
		return 0, nil, nil, fmt.Errorf("gpu: %d logits for a batch of %d x %d", len(logits), B, O)
	}
	g := G.NewGraph()
	z := G.NewMatrix(g, tensor.Float32, G.WithShape(B, O), G.WithName("logits"),
		G.WithValue(tensor.New(tensor.WithShape(B, O), tensor.WithBacking(append([]float32(nil), logits...)))))
	cost, err := loss.Build(g, z)
	if err != nil {
		return 0, nil, nil, err
	}
	var dzNode *G.Node
	if grad {
		gs, err := G.Grad(cost, z)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("gpu: differentiating the loss: %w", err)
		}
		dzNode = gs[0]
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return 0, nil, nil, fmt.Errorf("gpu: the loss on the host: %w", err)
	}
	switch x := cost.Value().Data().(type) {
	case float32:
		val = float64(x)
	case float64:
		val = x
	case []float32:
		if len(x) != 1 {
			return 0, nil, nil, fmt.Errorf("gpu: the loss has %d values", len(x))
		}
		val = float64(x[0])
	default:
		return 0, nil, nil, fmt.Errorf("gpu: the loss is a %T", x)
	}
	if dzNode != nil {
		d, ok := dzNode.Value().Data().([]float32)
		if !ok || len(d) != B*O {
			return 0, nil, nil, fmt.Errorf("gpu: the loss's gradient is %T of shape %v", dzNode.Value().Data(), dzNode.Value().Shape())
		}
		dz = append([]float32(nil), d...)
	}
	if pl, ok := loss.(nn.PerExampleLoss); ok {
		per = append([]float32(nil), pl.PerExample()...)
	}
	return val, dz, per, nil
}
