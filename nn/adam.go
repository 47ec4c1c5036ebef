package nn

// The Adam optimiser, as torch.optim.Adam computes it on the CPU (the single-tensor path), and
// gradient-norm clipping as torch.nn.utils.clip_grad_norm_.

import (
	"fmt"
	"math"
	"sort"
)

// AdamConfig holds Adam's settings; the zero value of a field means PyTorch's default.
type AdamConfig struct {
	LR          float64 // default 1e-3
	Beta1       float64 // default 0.9
	Beta2       float64 // default 0.999
	Eps         float64 // default 1e-8
	WeightDecay float64 // L2 penalty added to the gradient (not AdamW); default 0
	// MaxGradNorm > 0 clips the gradients' global L2 norm to it before each step (as
	// clip_grad_norm_); 0 means no clipping.
	MaxGradNorm float64
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
	state map[string]*AdamParamState
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
	case !(cfg.MaxGradNorm >= 0):
		return nil, fmt.Errorf("nn: adam: max gradient norm %v must be >= 0", cfg.MaxGradNorm)
	}
	return &Adam{cfg: cfg, state: map[string]*AdamParamState{}}, nil
}

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
	lr, beta1, beta2 := a.cfg.LR, a.cfg.Beta1, a.cfg.Beta2
	// PyTorch casts the Python-float factors to the tensors' float32.
	w1 := float32(1 - beta1)
	b2 := float32(beta2)
	w2 := float32(1 - beta2)
	eps := float32(a.cfg.Eps)
	wd := float32(a.cfg.WeightDecay)
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
		w, g, m, v := p.Data(), p.Grad, st.ExpAvg, st.ExpAvgSq
		for i := range w {
			gi := g[i]
			if wd != 0 {
				gi += wd * w[i]
			}
			m[i] += w1 * (gi - m[i])          // exp_avg.lerp_(grad, 1-beta1)
			v[i] = v[i]*b2 + w2*gi*gi         // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1-beta2)
			den := sqrt32(v[i])/bc2sqrt + eps // exp_avg_sq.sqrt() / bias_correction2_sqrt + eps
			w[i] += negStep * m[i] / den      // param.addcdiv_(exp_avg, denom, -step_size)
		}
	}
	return nil
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
// Parameters without an entry start afresh on their next update.
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
	return nil
}
