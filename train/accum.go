package train

// Gradient accumulation (Config.GradAccum) and the per-step figures of the TensorBoard log.

import (
	"math"

	"github.com/sentibench/sentibench/nn"
)

// microBatches splits a batch into n contiguous micro-batches of as equal sizes as can be (a
// batch of fewer than n reviews into one per review); n <= 1 keeps the batch whole.
func microBatches(batch []int, n int) [][]int {
	if n <= 1 || len(batch) <= 1 {
		return [][]int{batch}
	}
	n = min(n, len(batch))
	out := make([][]int, 0, n)
	for k := range n {
		out = append(out, batch[k*len(batch)/n:(k+1)*len(batch)/n])
	}
	return out
}

// gradAccumulator adds up the gradients of a batch's micro-batches, each weighted by its share
// of the batch's reviews: the recipe's loss is a mean over the batch, so the batch's gradient
// is the micro-batches' mean-loss gradients weighted by their sizes. It keeps the sums beside
// the parameters (each step overwrites Param.Grad) and writes them back at the end.
type gradAccumulator struct {
	params []*nn.Param
	sums   [][]float32
	loss   float64
	logits []float32
	res    nn.StepResult
}

// newGradAccumulator starts the sums of the model's trainable parameters. Accumulation works on
// the host's gradients: Config.Check refuses it on a GPU.
func (t *trainer) newGradAccumulator() *gradAccumulator {
	a := &gradAccumulator{}
	for _, p := range t.model.Params() {
		if !p.Frozen {
			a.params = append(a.params, p)
			a.sums = append(a.sums, nil)
		}
	}
	return a
}

// add adds a micro-batch's step (its gradients in the parameters' Grad) with weight w.
func (a *gradAccumulator) add(res nn.StepResult, w float64) {
	wf := float32(w)
	for i, p := range a.params {
		if p.Grad == nil {
			continue
		}
		if a.sums[i] == nil {
			a.sums[i] = make([]float32, len(p.Grad))
		}
		s := a.sums[i]
		for j, g := range p.Grad {
			s[j] += wf * g
		}
	}
	a.loss += w * res.Loss
	a.logits = append(a.logits, res.Logits...)
	timing := a.res
	a.res = res
	a.res.BuildSeconds += timing.BuildSeconds
	a.res.ForwardSeconds += timing.ForwardSeconds
	a.res.BackwardSeconds += timing.BackwardSeconds
}

// finish writes the sums into the parameters' gradients and returns the batch's result: the
// weighted loss and every micro-batch's logits in batch order.
func (a *gradAccumulator) finish() nn.StepResult {
	for i, p := range a.params {
		if a.sums[i] != nil {
			copy(p.Grad, a.sums[i])
		}
	}
	res := a.res
	res.Loss, res.Logits, res.PerExample = a.loss, a.logits, nil
	return res
}

// logStep writes the last optimiser step's figures to the TensorBoard log: the batch's loss,
// the rate the step used and the gradients' norm before clipping (measured on the host; NaN on
// a GPU unless the optimiser clipped, which measures it).
func (t *trainer) logStep(loss float64) error {
	if t.tb == nil {
		return nil
	}
	norm := math.NaN()
	_, onCPU := t.eng.(*cpuEngine)
	switch {
	case onCPU && t.cfg.ClipNorm > 0:
		norm = t.opt.LastGradNorm // clipping measured it (and scaled the gradients since)
	case onCPU:
		norm = gradNorm(t.model.Params())
	}
	return t.tb.Step(t.optSteps, StepScalars{Loss: loss, LearningRate: t.lastLR(), GradNorm: norm})
}

// lastLR is the learning rate of the last optimiser step (0 before the first).
func (t *trainer) lastLR() float64 {
	if t.optSteps == 0 {
		return 0
	}
	return t.opt.Schedule().LR(t.optSteps - 1)
}

// gradNorm is the global L2 norm of the trainable parameters' gradients, summed as
// nn.ClipGradNorm sums it.
func gradNorm(params []*nn.Param) float64 {
	var sum float64
	for _, p := range params {
		if p.Frozen {
			continue
		}
		for _, g := range p.Grad {
			sum += float64(g) * float64(g)
		}
	}
	return math.Sqrt(sum)
}
