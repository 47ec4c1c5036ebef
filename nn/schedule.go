package nn

// Learning-rate schedules, as the Hugging Face transformers library's get_scheduler builds them
// (transformers/optimization.py): a multiplier of the base learning rate for each optimiser step,
// applied as torch.optim.lr_scheduler.LambdaLR applies it (lr = base_lr * multiplier).

import (
	"fmt"
	"math"
)

// ScheduleKind names a learning-rate schedule.
type ScheduleKind string

// The schedules, each after an optional linear warmup from 0 to the base rate (transformers'
// get_scheduler names in brackets).
const (
	// ScheduleConstant keeps the base rate ("constant", or "constant_with_warmup" with a warmup).
	ScheduleConstant ScheduleKind = "constant"
	// ScheduleLinear falls linearly to 0 at the last step ("linear").
	ScheduleLinear ScheduleKind = "linear"
	// ScheduleCosine follows a cosine over Cycles periods, by default half a period: from the base
	// rate down to 0 ("cosine").
	ScheduleCosine ScheduleKind = "cosine"
	// ScheduleCosineRestarts runs Cycles half-cosines from the base rate to 0, restarting at the
	// base rate after each ("cosine_with_restarts").
	ScheduleCosineRestarts ScheduleKind = "cosine-restarts"
	// SchedulePolynomial falls from the base rate to LREnd as (1 - progress)^Power
	// ("polynomial").
	SchedulePolynomial ScheduleKind = "polynomial"
)

// ScheduleKinds lists every schedule, for flag help and completion.
func ScheduleKinds() []ScheduleKind {
	return []ScheduleKind{ScheduleConstant, ScheduleLinear, ScheduleCosine, ScheduleCosineRestarts, SchedulePolynomial}
}

// ScheduleConfig describes a learning-rate schedule. The zero value is the constant rate without
// warmup (every multiplier exactly 1), the training recipe's.
type ScheduleConfig struct {
	Kind ScheduleKind // "" means ScheduleConstant
	// TrainingSteps is the number of optimiser steps of the whole run (num_training_steps); it
	// is needed by every schedule but the constant one, and by a warmup ratio.
	TrainingSteps int
	// WarmupSteps is the number of optimiser steps of the linear warmup (num_warmup_steps).
	WarmupSteps int
	// WarmupRatio, when WarmupSteps is 0, sets the warmup to ceil(WarmupRatio * TrainingSteps)
	// steps, as the Hugging Face Trainer resolves a warmup ratio (TrainingArguments'
	// warmup_ratio, or a warmup_steps below 1 since transformers 5). At most one of the two is set.
	WarmupRatio float64
	// Cycles is num_cycles: for ScheduleCosine the number of cosine periods (default 0.5, a
	// half-cosine from the base rate to 0), for ScheduleCosineRestarts the number of half-cosines
	// (default 1). Other schedules ignore it.
	Cycles float64
	// Power is the polynomial's exponent (default 1, linear); LREnd the rate it ends at
	// (default 1e-7, transformers' default), which must be below the base rate. Other schedules
	// ignore them.
	Power float64
	LREnd float64
}

// Schedule is a resolved ScheduleConfig for one base learning rate: a pure function of the number
// of optimiser steps taken, so that it carries no state of its own to checkpoint.
type Schedule struct {
	kind          ScheduleKind
	trainingSteps int
	warmupSteps   int
	cycles        float64
	power, lrEnd  float64
	baseLR        float64
}

// NewSchedule checks cfg and resolves it for the base learning rate baseLR (the optimiser's LR;
// the polynomial schedule needs it, as transformers' reads the optimiser's initial lr).
func NewSchedule(cfg ScheduleConfig, baseLR float64) (*Schedule, error) {
	s := &Schedule{kind: cfg.Kind, trainingSteps: cfg.TrainingSteps, warmupSteps: cfg.WarmupSteps,
		cycles: cfg.Cycles, power: cfg.Power, lrEnd: cfg.LREnd, baseLR: baseLR}
	if s.kind == "" {
		s.kind = ScheduleConstant
	}
	known := false
	for _, k := range ScheduleKinds() {
		known = known || k == s.kind
	}
	switch {
	case !known:
		return nil, fmt.Errorf("nn: learning-rate schedule %q is not one of %v", cfg.Kind, ScheduleKinds())
	case cfg.TrainingSteps < 0:
		return nil, fmt.Errorf("nn: learning-rate schedule: %d training steps", cfg.TrainingSteps)
	case cfg.WarmupSteps < 0:
		return nil, fmt.Errorf("nn: learning-rate schedule: warmup steps %d must be >= 0", cfg.WarmupSteps)
	case !(cfg.WarmupRatio >= 0 && cfg.WarmupRatio <= 1):
		return nil, fmt.Errorf("nn: learning-rate schedule: warmup ratio %v must be in [0, 1]", cfg.WarmupRatio)
	case cfg.WarmupSteps > 0 && cfg.WarmupRatio > 0:
		return nil, fmt.Errorf("nn: learning-rate schedule: give warmup steps (%d) or a warmup ratio (%v), not both", cfg.WarmupSteps, cfg.WarmupRatio)
	case !(baseLR > 0) || math.IsInf(baseLR, 0):
		return nil, fmt.Errorf("nn: learning-rate schedule: base learning rate %v must be positive", baseLR)
	}
	needsSteps := s.kind != ScheduleConstant || cfg.WarmupRatio > 0
	if needsSteps && cfg.TrainingSteps == 0 {
		return nil, fmt.Errorf("nn: learning-rate schedule %s needs the run's number of training steps", s.kind)
	}
	if cfg.WarmupRatio > 0 {
		s.warmupSteps = int(math.Ceil(cfg.WarmupRatio * float64(cfg.TrainingSteps)))
	}
	if cfg.TrainingSteps > 0 && s.warmupSteps > cfg.TrainingSteps {
		return nil, fmt.Errorf("nn: learning-rate schedule: warmup steps %d beyond the run's %d training steps", s.warmupSteps, cfg.TrainingSteps)
	}
	switch s.kind {
	case ScheduleCosine:
		if s.cycles == 0 {
			s.cycles = 0.5
		}
	case ScheduleCosineRestarts:
		if s.cycles == 0 {
			s.cycles = 1
		}
	case SchedulePolynomial:
		if s.power == 0 {
			s.power = 1
		}
		if s.lrEnd == 0 {
			s.lrEnd = 1e-7
		}
		if !(s.power > 0) || math.IsInf(s.power, 0) {
			return nil, fmt.Errorf("nn: learning-rate schedule: polynomial power %v must be positive", cfg.Power)
		}
		if !(s.lrEnd >= 0 && s.lrEnd < baseLR) {
			return nil, fmt.Errorf("nn: learning-rate schedule: polynomial end rate %v must be in [0, the base rate %v)", s.lrEnd, baseLR)
		}
	}
	if !(s.cycles >= 0) || math.IsInf(s.cycles, 0) {
		return nil, fmt.Errorf("nn: learning-rate schedule: cycles %v must be positive", cfg.Cycles)
	}
	return s, nil
}

// WarmupSteps is the number of warmup steps, the ratio resolved.
func (s *Schedule) WarmupSteps() int { return s.warmupSteps }

// Kind is the schedule's kind ("" resolved to ScheduleConstant).
func (s *Schedule) Kind() ScheduleKind { return s.kind }

// LR is the learning rate of the optimiser step that follows step steps already taken (the first
// step uses LR(0)), as LambdaLR's lr after step calls of scheduler.step(): base_lr * multiplier.
func (s *Schedule) LR(step int64) float64 { return s.baseLR * s.Multiplier(step) }

// Multiplier is the factor of the base rate after step optimiser steps, transformers' lr_lambda
// of current_step, computed as it does in float64.
func (s *Schedule) Multiplier(step int64) float64 {
	cur := float64(step)
	warm := float64(s.warmupSteps)
	total := float64(s.trainingSteps)
	if step < int64(s.warmupSteps) {
		return cur / math.Max(1, warm)
	}
	switch s.kind {
	case ScheduleLinear:
		return math.Max(0, (total-cur)/math.Max(1, total-warm))
	case ScheduleCosine:
		progress := (cur - warm) / math.Max(1, total-warm)
		return math.Max(0, 0.5*(1+math.Cos(math.Pi*s.cycles*2*progress)))
	case ScheduleCosineRestarts:
		progress := (cur - warm) / math.Max(1, total-warm)
		if progress >= 1 {
			return 0
		}
		return math.Max(0, 0.5*(1+math.Cos(math.Pi*pyMod(s.cycles*progress, 1))))
	case SchedulePolynomial:
		if step > int64(s.trainingSteps) {
			return s.lrEnd / s.baseLR
		}
		lrRange := s.baseLR - s.lrEnd
		decaySteps := total - warm
		if decaySteps == 0 { // warmup to the last step: transformers divides by zero here
			return s.lrEnd / s.baseLR
		}
		pctRemaining := 1 - (cur-warm)/decaySteps
		decay := lrRange*math.Pow(pctRemaining, s.power) + s.lrEnd
		return decay / s.baseLR
	}
	return 1
}

// pyMod is Python's float modulo for a non-negative divisor (the result takes the divisor's sign).
func pyMod(x, m float64) float64 {
	r := math.Mod(x, m)
	if r != 0 && (r < 0) != (m < 0) {
		r += m
	}
	return r
}
