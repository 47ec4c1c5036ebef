package nn

// Gradient announcements (Runner.OnGrad): how a caller learns, during the backward pass, that
// a trainable parameter's gradient is final, so that it can start sending it (a data-parallel
// allreduce) while the layers below still run their backward passes.
//
// Gorgonia's tape machine runs a graph's nodes in the order they were made (its topological
// sort visits the nodes by ascending id), and the backward nodes are made by G.Grad layer by
// layer from the loss down. A node applied to a gradient after G.Grad returns therefore runs
// after the whole backward pass. So the announcement is made while G.Grad builds the backward
// pass:
//   - the Runner puts a hook op (gradHookOp, the identity) between each trainable parameter's
//     input node and the layer that uses it (paramNode returns the hook);
//   - a fused op's SymDiff, once it has made the getter nodes of its parameters' gradients,
//     calls announceGrads, which applies a tap op (gradTapOp) to each getter whose parameter
//     comes through a hook that the op alone uses. The tap node is made before the nodes of
//     the layers below, so it runs before them: it copies the gradient into Param.Grad and
//     calls Runner.OnGrad. A fused op whose backward pass runs in stages (the recurrent stack:
//     one backward op per layer) announces each stage's gradients before making the next.
//   - a parameter that no op announced (used twice, or by Gorgonia's own ops) is announced by
//     its hook's own SymDiff, with its summed gradient: correct, but late, since the hook was
//     made before the forward pass and G.Grad reaches it last.

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gradHooks are the hooks of one training step's graph: one per trainable parameter, in the
// order of the Runner's params.
type gradHooks struct {
	r         *Runner
	ops       []*gradHookOp
	nodes     G.Nodes
	announced []bool // announced[i]: parameter i's gradient is in its Grad (this step)
}

// gradHookOp passes a parameter's weights through unchanged (the same value, no copy); its
// SymDiff announces the parameter's summed gradient unless an op did (see announceGrads).
type gradHookOp struct {
	opBase
	hooks  *gradHooks
	p      *Param
	i      int  // the parameter's index in the step's params
	uses   int  // the ops of the forward pass that use the parameter (countUses)
	tapped bool // a tap was applied to the parameter's gradient
}

func newGradHookOp(hooks *gradHooks, p *Param, i int) *gradHookOp {
	shape := tensor.Shape(p.Shape)
	return &gradHookOp{opBase: newOp(fmt.Sprintf("GradHook(%s)", p.Name), shape, shape.Dims()), hooks: hooks, p: p, i: i}
}

func (op *gradHookOp) DiffWRT(int) []bool { return []bool{true} }
func (op *gradHookOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	if !op.tapped {
		if err := op.tap(grad); err != nil {
			return nil, err
		}
	}
	return G.Nodes{grad}, nil
}

// Do returns the weights themselves: the layers see the parameter's own tensor, as without a
// hook (the recurrent kernels, for one, write gradients straight into Param.Grad when they do).
func (op *gradHookOp) Do(vals ...G.Value) (G.Value, error) { return vals[0], nil }

// tap applies the tap op to grad, the parameter's final gradient.
func (op *gradHookOp) tap(grad *G.Node) error {
	if _, err := G.ApplyOp(&gradTapOp{newGradOp(fmt.Sprintf("GradTap(%s)", op.p.Name), tensor.Shape{1}, grad.Shape().Dims()), op}, grad); err != nil {
		return fmt.Errorf("nn: announcing the gradient of %s: %w", op.p.Name, err)
	}
	op.tapped = true
	return nil
}

// gradTapOp copies a parameter's gradient into Param.Grad and announces it (Runner.OnGrad).
// Nothing reads its output (a token).
type gradTapOp struct {
	gradOpBase
	hook *gradHookOp
}

func (op *gradTapOp) Do(vals ...G.Value) (G.Value, error) {
	h := op.hook
	if err := copyGrad(h.p, vals[0]); err != nil {
		return nil, err
	}
	h.hooks.announced[h.i] = true
	h.hooks.r.OnGrad(h.p)
	return token[float32](), nil
}

// announceGrads is what a fused op's SymDiff calls once it has made grads, the gradient nodes
// of its inputs in (nil: none): each input that is a parameter's hook used by this op alone
// gets its gradient announced as soon as that gradient is computed (see the file's comment).
// Without hooks (no Runner.OnGrad) it does nothing.
func announceGrads(in, grads G.Nodes) error {
	for k, n := range in {
		h, ok := n.Op().(*gradHookOp)
		if !ok || h.tapped || grads[k] == nil || h.uses != 1 {
			continue
		}
		if err := h.tap(grads[k]); err != nil {
			return err
		}
	}
	return nil
}

// hookParams makes the hook of each trainable parameter params[i] in g (before the model's
// forward pass, so that paramNode finds it).
func (r *Runner) hookParams(g *G.ExprGraph, params []*Param) (*gradHooks, error) {
	hooks := &gradHooks{r: r, announced: make([]bool, len(params))}
	for i, p := range params {
		in, err := paramNode(g, p)
		if err != nil {
			return nil, err
		}
		op := newGradHookOp(hooks, p, i)
		n, err := G.ApplyOpWithName(op, p.Name, in)
		if err != nil {
			return nil, fmt.Errorf("nn: hooking %s: %w", p.Name, err)
		}
		hooks.ops, hooks.nodes = append(hooks.ops, op), append(hooks.nodes, n)
	}
	return hooks, nil
}

// countUses counts the ops that use each hook, once the forward pass and the loss are in the
// graph and before G.Grad adds the backward pass (whose ops may read the weights too, but add
// no term to their gradients). It returns the first parameter that no op uses, if any.
func (hooks *gradHooks) countUses(g *G.ExprGraph) *Param {
	var unused *Param
	for i, op := range hooks.ops {
		op.uses = g.To(hooks.nodes[i].ID()).Len()
		if op.uses == 0 && unused == nil {
			unused = op.p
		}
	}
	return unused
}
