package nn

// The Adam optimiser, as torch.optim.Adam computes it on the CPU (the single-tensor path), with
// torch.optim.AdamW's decoupled weight decay and a learning-rate schedule (schedule.go), and
// gradient-norm clipping as torch.nn.utils.clip_grad_norm_.

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
)

// AdamConfig holds Adam's settings; the zero value of a field means PyTorch's default.
type AdamConfig struct {
	LR          float64 // default 1e-3
	Beta1       float64 // default 0.9
	Beta2       float64 // default 0.999
	Eps         float64 // default 1e-8
	WeightDecay float64 // L2 penalty added to the gradient (torch.optim.Adam's); default 0
	// DecoupledWeightDecay is torch.optim.AdamW's weight_decay: before each step every weight
	// shrinks by the factor 1 - lr*DecoupledWeightDecay, lr the step's scheduled rate. 0 (the
	// default) means none. At most one of WeightDecay and DecoupledWeightDecay is set.
	DecoupledWeightDecay float64
	// Schedule varies the learning rate per optimiser step from LR; the zero value keeps LR.
	Schedule ScheduleConfig
	// MaxGradNorm > 0 clips the gradients' global L2 norm to it before each step (as
	// clip_grad_norm_); 0 means no clipping.
	MaxGradNorm float64
	// Workers is the number of goroutines sharing the update of a large parameter; 0 means
	// GOMAXPROCS. The result does not depend on it.
	Workers int
}

// AdamParamState is Adam's state for one parameter, as PyTorch keeps it.
type AdamParamState struct {
	Step     int64
	ExpAvg   []float32
	ExpAvgSq []float32
}

// Adam updates parameters in place from their Param.Grad. Frozen parameters are skipped, and a
// parameter gets its state on its first update (as PyTorch's lazily created state).
type Adam struct {
	cfg   AdamConfig
	sched *Schedule
	state map[string]*AdamParamState
	// steps is the number of optimiser steps taken, the schedule's clock. It is not checkpointed
	// itself: SetState restores it as the largest step count of the parameters' states.
	steps int64
	// LastLR is the learning rate of the last step (0 before the first).
	LastLR float64
	// LastGradNorm is the gradients' total norm before clipping, measured when MaxGradNorm > 0.
	LastGradNorm float64
}

// NewAdam returns an optimiser with the given settings (zero fields take PyTorch's defaults).
func NewAdam(cfg AdamConfig) (*Adam, error) {
	if cfg.LR == 0 {
		cfg.LR = 1e-3
	}
	if cfg.Beta1 == 0 {
		cfg.Beta1 = 0.9
	}
	if cfg.Beta2 == 0 {
		cfg.Beta2 = 0.999
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-8
	}
	switch {
	case !(cfg.LR > 0) || math.IsInf(cfg.LR, 0):
		return nil, fmt.Errorf("nn: adam: learning rate %v must be positive", cfg.LR)
	case !(cfg.Beta1 >= 0 && cfg.Beta1 < 1) || !(cfg.Beta2 >= 0 && cfg.Beta2 < 1):
		return nil, fmt.Errorf("nn: adam: betas (%v, %v) must be in [0, 1)", cfg.Beta1, cfg.Beta2)
	case !(cfg.Eps > 0):
		return nil, fmt.Errorf("nn: adam: eps %v must be positive", cfg.Eps)
	case !(cfg.WeightDecay >= 0):
		return nil, fmt.Errorf("nn: adam: weight decay %v must be >= 0", cfg.WeightDecay)
	case !(cfg.DecoupledWeightDecay >= 0) || math.IsInf(cfg.DecoupledWeightDecay, 0):
		return nil, fmt.Errorf("nn: adam: decoupled weight decay %v must be >= 0", cfg.DecoupledWeightDecay)
	case cfg.WeightDecay > 0 && cfg.DecoupledWeightDecay > 0:
		return nil, fmt.Errorf("nn: adam: give weight decay (L2, %v) or decoupled weight decay (AdamW, %v), not both", cfg.WeightDecay, cfg.DecoupledWeightDecay)
	case !(cfg.MaxGradNorm >= 0):
		return nil, fmt.Errorf("nn: adam: max gradient norm %v must be >= 0", cfg.MaxGradNorm)
	}
	sched, err := NewSchedule(cfg.Schedule, cfg.LR)
	if err != nil {
		return nil, fmt.Errorf("nn: adam: %w", err)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	return &Adam{cfg: cfg, sched: sched, state: map[string]*AdamParamState{}}, nil
}

// Schedule returns the learning-rate schedule, resolved (its warmup ratio turned into steps).
func (a *Adam) Schedule() *Schedule { return a.sched }

// Steps is the number of optimiser steps taken (restored by SetState).
func (a *Adam) Steps() int64 { return a.steps }

// NextLR is the learning rate that the next step will use.
func (a *Adam) NextLR() float64 { return a.sched.LR(a.steps) }

// Config returns the settings in use.
func (a *Adam) Config() AdamConfig { return a.cfg }

// Step updates every trainable parameter (not Frozen, with a gradient) once.
func (a *Adam) Step(params []*Param) error {
	for _, p := range params {
		if !p.Frozen && p.Grad != nil && len(p.Grad) != p.Size() {
			return fmt.Errorf("nn: adam: %s has %d gradient values for %d weights", p.Name, len(p.Grad), p.Size())
		}
	}
	if a.cfg.MaxGradNorm > 0 {
		a.LastGradNorm = ClipGradNorm(params, a.cfg.MaxGradNorm)
	}
	// As LambdaLR: the rate of this step is base_lr * multiplier(steps taken); with the zero
	// Schedule the multiplier is exactly 1, so lr is cfg.LR bit for bit.
	lr, beta1, beta2 := a.sched.LR(a.steps), a.cfg.Beta1, a.cfg.Beta2
	a.steps++
	a.LastLR = lr
	// PyTorch casts the Python-float factors to the tensors' float32.
	w1 := float32(1 - beta1)
	b2 := float32(beta2)
	w2 := float32(1 - beta2)
	eps := float32(a.cfg.Eps)
	wd := float32(a.cfg.WeightDecay)
	decoupled := a.cfg.DecoupledWeightDecay != 0
	decay := float32(1 - lr*a.cfg.DecoupledWeightDecay) // param.mul_(1 - lr * weight_decay), in float32
	for _, p := range params {
		if p.Frozen || p.Grad == nil {
			continue
		}
		st := a.state[p.Name]
		if st == nil {
			st = &AdamParamState{ExpAvg: make([]float32, p.Size()), ExpAvgSq: make([]float32, p.Size())}
			a.state[p.Name] = st
		}
		st.Step++
		step := float64(st.Step)
		bc1 := 1 - math.Pow(beta1, step)
		bc2 := 1 - math.Pow(beta2, step)
		negStep := float32(-(lr / bc1))
		bc2sqrt := float32(math.Sqrt(bc2))
		k := adamKernel{w1: w1, b2: b2, w2: w2, eps: eps, wd: wd, decoupled: decoupled, decay: decay, negStep: negStep, bc2sqrt: bc2sqrt}
		parallel(a.cfg.Workers, p.Size(), 1<<16, func(lo, hi int) {
			k.update(p.Data()[lo:hi], p.Grad[lo:hi], st.ExpAvg[lo:hi], st.ExpAvgSq[lo:hi])
		})
	}
	return nil
}

// adamKernel is one Adam update with its factors in float32, as PyTorch applies them.
type adamKernel struct {
	w1, b2, w2, eps, wd, negStep, bc2sqrt float32
	decoupled                             bool    // AdamW: scale the weights by decay first
	decay                                 float32 // 1 - lr*weight_decay
}

func (k *adamKernel) update(w, g, m, v []float32) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	for i := range w {
		gi := g[i]
		if k.decoupled {
			w[i] *= k.decay // AdamW: param.mul_(1 - lr * weight_decay)
		}
		if k.wd != 0 {
			gi += k.wd * w[i]
		}
		m[i] += k.w1 * (gi - m[i])            // exp_avg.lerp_(grad, 1-beta1)
		v[i] = v[i]*k.b2 + k.w2*gi*gi         // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1-beta2)
		den := sqrt32(v[i])/k.bc2sqrt + k.eps // exp_avg_sq.sqrt() / bias_correction2_sqrt + eps
		w[i] += k.negStep * m[i] / den        // param.addcdiv_(exp_avg, denom, -step_size)
	}
}

// parallel splits [0, n) into up to workers contiguous ranges of at least minChunk elements
// and runs f on each in its own goroutine.
func parallel(workers, n, minChunk int, f func(lo, hi int)) {
	parts := min(workers, n/minChunk)
	if parts < 2 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + parts - 1) / parts
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// ClipGradNorm scales the gradients of the trainable parameters so that their global L2 norm is
// at most maxNorm, as torch.nn.utils.clip_grad_norm_ (coefficient maxNorm/(norm+1e-6), capped at
// 1). It returns the norm before clipping.
func ClipGradNorm(params []*Param, maxNorm float64) float64 {
	var sum float64
	for _, p := range params {
		if p.Frozen {
			continue
		}
		for _, g := range p.Grad {
			sum += float64(g) * float64(g)
		}
	}
	norm := math.Sqrt(sum)
	coef := maxNorm / (norm + 1e-6)
	if coef < 1 {
		c := float32(coef)
		for _, p := range params {
			if p.Frozen {
				continue
			}
			for i := range p.Grad {
				p.Grad[i] *= c
			}
		}
	}
	return norm
}

// State returns a deep copy of the optimiser's state, by parameter name (for checkpoints).
func (a *Adam) State() map[string]AdamParamState {
	out := make(map[string]AdamParamState, len(a.state))
	for name, st := range a.state {
		out[name] = AdamParamState{
			Step:     st.Step,
			ExpAvg:   append([]float32(nil), st.ExpAvg...),
			ExpAvgSq: append([]float32(nil), st.ExpAvgSq...),
		}
	}
	return out
}

// SetState replaces the optimiser's state with a copy of s (from State, or a checkpoint),
// checking it against the parameters: every entry must name a parameter and match its size.
// Parameters without an entry start afresh on their next update. The step count, the learning-rate
// schedule's clock, becomes the largest Step of the entries (every trainable parameter is updated
// at every step, so they all hold the count of steps taken); the schedule is a pure function of
// it, so a checkpoint of this state resumes the schedule exactly.
func (a *Adam) SetState(s map[string]AdamParamState, params []*Param) error {
	sizes := map[string]int{}
	for _, p := range params {
		sizes[p.Name] = p.Size()
	}
	names := make([]string, 0, len(s))
	for name := range s {
		names = append(names, name)
	}
	sort.Strings(names)
	next := make(map[string]*AdamParamState, len(s))
	for _, name := range names {
		st := s[name]
		n, ok := sizes[name]
		switch {
		case !ok:
			return fmt.Errorf("nn: adam state: %q is not a parameter of the model", name)
		case len(st.ExpAvg) != n || len(st.ExpAvgSq) != n:
			return fmt.Errorf("nn: adam state: %q has %d/%d moment values, the parameter %d", name, len(st.ExpAvg), len(st.ExpAvgSq), n)
		case st.Step < 0:
			return fmt.Errorf("nn: adam state: %q has step %d", name, st.Step)
		}
		next[name] = &AdamParamState{
			Step:     st.Step,
			ExpAvg:   append([]float32(nil), st.ExpAvg...),
			ExpAvgSq: append([]float32(nil), st.ExpAvgSq...),
		}
	}
	a.state = next
	a.steps = 0
	for _, st := range next {
		a.steps = max(a.steps, st.Step)
	}
	return nil
}
