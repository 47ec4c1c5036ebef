package nn

// The step runner: one batch through a model, forward (Eval) or forward and backward (Train).

import (
	"fmt"
	"math"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// StepResult is what one step produced. Its slices belong to the Runner and stay valid until
// the Runner's next step.
type StepResult struct {
	// Logits holds the B*Outputs logits, row-major.
	Logits []float32
	// Loss is the loss's value (NaN when Step got no loss).
	Loss float64
	// PerExample holds each example's loss when the loss reports them (PerExampleLoss).
	PerExample []float32
	// Nodes is the size of the step's graph.
	Nodes int
	// BuildSeconds is the time spent building the graph, differentiating it and compiling it
	// (the runner's overhead); ForwardSeconds and BackwardSeconds split the run itself.
	BuildSeconds, ForwardSeconds, BackwardSeconds float64
}

// Runner runs steps. It keeps its result buffers from step to step; a Runner runs one step at
// a time.
type Runner struct {
	// OnGrad, when set, is called during a Train step's backward pass with each trainable
	// parameter as soon as its gradient is final and in its Grad: in the recipe's models,
	// before the backward pass of the layers below the parameter's layer runs, so that the
	// caller can send the gradient (a data-parallel allreduce) while the backward pass goes
	// on. It is called during Step, on the goroutine that runs the graph (Gorgonia's tape
	// machine runs it on one of its own), one call at a time, once per trainable parameter
	// and step, the last layers' parameters first; the parameter's Grad then stays as it is
	// until the step ends. A parameter that no fused op announces (one used twice) is
	// announced at the end of the backward pass. See gradhook.go.
	OnGrad func(p *Param)

	logits []float32
	// backwardStart is set by the marker op when the backward pass begins.
	backwardStart time.Time
}

// Step runs one batch through the model.
//
// In Eval mode it runs the forward pass (dropout off) and, when loss is not nil, the loss. In
// Train mode it also runs the backward pass of the loss and copies the gradient of every
// trainable parameter into its Param.Grad (frozen parameters are left alone), announcing each
// to OnGrad, when set, as soon as it is there; the optimiser step is the caller's. rng draws
// the dropout masks (Train mode).
func (r *Runner) Step(m Model, in *Input, loss Loss, mode Mode, rng *RNG) (res StepResult, err error) {
	if m == nil || in == nil {
		return res, fmt.Errorf("nn: a step needs a model and a batch")
	}
	defer func() { // Gorgonia panics on some errors (a failed compile); return them as errors.
		if p := recover(); p != nil {
			err = fmt.Errorf("nn: %s step: %v", m.Config().Kind, p)
		}
	}()
	start := time.Now()

	// 1. A fresh graph holding the model's forward pass for this batch. The logits pass through
	// a tap that copies them out as soon as they are computed: a loss made of Gorgonia's own ops
	// may later reuse their memory in place.
	g := G.NewGraph()
	var hooks *gradHooks
	if mode == Train && r.OnGrad != nil {
		if hooks, err = r.hookParams(g, trainable(m)); err != nil {
			return res, err
		}
	}
	logits, err := m.Forward(g, in, mode, rng)
	if err != nil {
		return res, err
	}
	if logits, err = G.ApplyOp(newTapOp(r, logits.Shape()), logits); err != nil {
		return res, fmt.Errorf("nn: the %s model's logits: %w", m.Config().Kind, err)
	}

	// 2. The loss, behind a marker op that notes when the backward pass starts.
	var cost *G.Node
	if loss != nil {
		if cost, err = loss.Build(g, logits); err != nil {
			return res, err
		}
		if cost, err = G.ApplyOp(newMarkOp(r), cost); err != nil {
			return res, fmt.Errorf("nn: marking the loss: %w", err)
		}
	} else if mode == Train {
		return res, fmt.Errorf("nn: a training step needs a loss")
	}

	// 3. Train mode: the gradient nodes of the trainable parameters.
	var params []*Param
	var grads G.Nodes
	if mode == Train {
		var wrt G.Nodes
		if params, wrt, err = trainableNodes(g, m); err != nil {
			return res, err
		}
		if hooks != nil {
			if p := hooks.countUses(g); p != nil {
				return res, fmt.Errorf("nn: the %s model's forward pass did not use its parameter %s", m.Config().Kind, p.Name)
			}
		}
		if len(wrt) > 0 {
			if grads, err = G.Grad(cost, wrt...); err != nil {
				return res, fmt.Errorf("nn: differentiating the %s model: %w", m.Config().Kind, err)
			}
		}
	}

	// 4. Compile and run.
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	res.Nodes = len(g.AllNodes())
	runStart := time.Now()
	r.backwardStart = time.Time{}
	if err := vm.RunAll(); err != nil {
		return res, fmt.Errorf("nn: %s step: %w", m.Config().Kind, err)
	}
	end := time.Now()
	res.BuildSeconds = runStart.Sub(start).Seconds()
	if r.backwardStart.IsZero() || mode != Train {
		res.ForwardSeconds = end.Sub(runStart).Seconds()
	} else {
		res.ForwardSeconds = r.backwardStart.Sub(runStart).Seconds()
		res.BackwardSeconds = end.Sub(r.backwardStart).Seconds()
	}

	// 5. Read the results out of the graph before it is dropped.
	for i, p := range params {
		if hooks != nil && hooks.announced[i] {
			continue // the tap copied it
		}
		if err := copyGrad(p, grads[i].Value()); err != nil {
			return res, err
		}
	}
	res.Logits = r.logits
	res.Loss = math.NaN()
	if cost != nil {
		if res.Loss, err = scalarValue(cost.Value()); err != nil {
			return res, fmt.Errorf("nn: reading the loss: %w", err)
		}
		if pl, ok := loss.(PerExampleLoss); ok {
			res.PerExample = pl.PerExample()
		}
	}
	return res, nil
}

// trainable returns m's trainable parameters, in m's order.
func trainable(m Model) []*Param {
	var params []*Param
	for _, p := range m.Params() {
		if !p.Frozen {
			params = append(params, p)
		}
	}
	return params
}

// trainableNodes finds the graph's input node of every trainable parameter of m (the node
// whose value is the Param's own tensor: see paramNode).
func trainableNodes(g *G.ExprGraph, m Model) ([]*Param, G.Nodes, error) {
	byValue := map[G.Value]*G.Node{}
	for _, n := range g.Inputs() {
		if v := n.Value(); v != nil {
			byValue[v] = n
		}
	}
	params := trainable(m)
	nodes := make(G.Nodes, len(params))
	for i, p := range params {
		n, ok := byValue[G.Value(p.Value)]
		if !ok {
			return nil, nil, fmt.Errorf("nn: the %s model's forward pass did not use its parameter %s", m.Config().Kind, p.Name)
		}
		nodes[i] = n
	}
	return params, nodes, nil
}

// copyGrad copies a gradient value into p.Grad (nothing to copy when an op wrote p.Grad itself).
func copyGrad(p *Param, v G.Value) error {
	src, ok := v.Data().([]float32)
	if !ok || len(src) != p.Size() {
		return fmt.Errorf("nn: gradient of %s: got %T of shape %v, want %d float32s", p.Name, v.Data(), v.Shape(), p.Size())
	}
	if len(p.Grad) != len(src) {
		p.Grad = make([]float32, len(src))
	}
	if &p.Grad[0] != &src[0] {
		copy(p.Grad, src)
	}
	return nil
}

// tapOp passes the logits through (as a copy) and keeps a copy in the Runner.
type tapOp struct {
	opBase
	r *Runner
}

func newTapOp(r *Runner, shape tensor.Shape) *tapOp {
	return &tapOp{newOp("LogitsTap", shape, shape.Dims()), r}
}

func (op *tapOp) DiffWRT(int) []bool { return []bool{true} }
func (op *tapOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	return G.Nodes{grad}, nil
}
func (op *tapOp) Do(vals ...G.Value) (G.Value, error) {
	z, err := values[float32](vals[0])
	if err != nil {
		return nil, fmt.Errorf("nn: logits: %w", err)
	}
	op.r.logits = append(op.r.logits[:0], z...)
	return dense(append([]float32(nil), z...), op.out...), nil
}

// markOp passes the loss through unchanged; its backward op notes when the backward pass starts
// (the first op to run after the forward pass).
type markOp struct {
	opBase
	r *Runner
}

func newMarkOp(r *Runner) *markOp { return &markOp{newOp("LossMark", tensor.ScalarShape(), 0), r} }

func (op *markOp) DiffWRT(int) []bool { return []bool{true} }
func (op *markOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	d, err := G.ApplyOp(&markBwdOp{newGradOp("LossMarkGrad", tensor.ScalarShape(), 0), op.r}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d}, nil
}
func (op *markOp) Do(vals ...G.Value) (G.Value, error) { return copyScalar(vals[0]) }

type markBwdOp struct {
	gradOpBase
	r *Runner
}

func (op *markBwdOp) Do(vals ...G.Value) (G.Value, error) {
	op.r.backwardStart = time.Now()
	return copyScalar(vals[0])
}

// copyScalar returns a fresh scalar value equal to v.
func copyScalar(v G.Value) (G.Value, error) {
	x, err := scalarValue(v)
	if err != nil {
		return nil, err
	}
	if v.Dtype() == tensor.Float64 {
		return scalar[float64](x), nil
	}
	return scalar[float32](x), nil
}
