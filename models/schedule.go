package models

import (
	"fmt"
	"math"
)

// ScheduleKind names a learning-rate schedule.
type ScheduleKind string

// The schedules.
const (
	// Constant keeps the base rate.
	Constant ScheduleKind = "constant"
	// StepDecay multiplies the rate by Gamma every Every units.
	StepDecay ScheduleKind = "step"
	// Cosine anneals the rate along half a cosine from the base rate to
	// Floor × base over Length units, then stays there.
	Cosine ScheduleKind = "cosine"
)

// StepDecay defaults for a spec that names no period or factor.
const (
	DefaultStepEvery = 10
	DefaultStepGamma = 0.5
)

// ScheduleUnit is what a schedule counts.
type ScheduleUnit string

// The units.
const (
	// PerEpoch counts completed epochs (Optimizer.EndEpoch), so that
	// shards of a data-parallel run, which take different numbers of steps,
	// use the same rate.
	PerEpoch ScheduleUnit = "epoch"
	// PerStep counts updates.
	PerStep ScheduleUnit = "step"
)

// Schedule scales an optimizer's base learning rate as a function of the
// number of epochs or steps done. The zero value is the constant schedule
// per epoch.
type Schedule struct {
	// Kind defaults to Constant.
	Kind ScheduleKind `json:"kind,omitempty"`
	// Unit defaults to PerEpoch.
	Unit ScheduleUnit `json:"unit,omitempty"`
	// Every is the period of StepDecay, ≥ 1.
	Every int64 `json:"every,omitempty"`
	// Gamma is the factor of StepDecay per period, in (0, 1].
	Gamma float64 `json:"gamma,omitempty"`
	// Length is the number of units Cosine takes to reach its floor, ≥ 1.
	Length int64 `json:"length,omitempty"`
	// Floor is the final fraction of the base rate of Cosine, in [0, 1].
	Floor float64 `json:"floor,omitempty"`
}

// Validate reports whether s is a schedule; the error wraps ErrOptimizer.
func (s Schedule) Validate() error {
	switch s.Unit {
	case "", PerEpoch, PerStep:
	default:
		return fmt.Errorf("%w: schedule unit %q, want %q or %q", ErrOptimizer, s.Unit, PerEpoch, PerStep)
	}
	switch s.Kind {
	case "", Constant:
		if s.Every != 0 || s.Gamma != 0 || s.Length != 0 || s.Floor != 0 {
			return fmt.Errorf("%w: constant schedule with every, gamma, length or floor set", ErrOptimizer)
		}
	case StepDecay:
		if s.Every < 1 {
			return fmt.Errorf("%w: step schedule every = %d, want ≥ 1", ErrOptimizer, s.Every)
		}
		if !(s.Gamma > 0 && s.Gamma <= 1) {
			return fmt.Errorf("%w: step schedule gamma = %v, want in (0, 1]", ErrOptimizer, s.Gamma)
		}
		if s.Length != 0 || s.Floor != 0 {
			return fmt.Errorf("%w: step schedule with length or floor set", ErrOptimizer)
		}
	case Cosine:
		if s.Length < 1 {
			return fmt.Errorf("%w: cosine schedule length = %d, want ≥ 1", ErrOptimizer, s.Length)
		}
		if !(s.Floor >= 0 && s.Floor <= 1) {
			return fmt.Errorf("%w: cosine schedule floor = %v, want in [0, 1]", ErrOptimizer, s.Floor)
		}
		if s.Every != 0 || s.Gamma != 0 {
			return fmt.Errorf("%w: cosine schedule with every or gamma set", ErrOptimizer)
		}
	default:
		return fmt.Errorf("%w: unknown schedule %q (want %q, %q or %q)", ErrOptimizer, s.Kind, Constant, StepDecay, Cosine)
	}
	return nil
}

// Factor returns the multiplier of the base rate after t units (t ≥ 0).
// It depends on t alone. s must be valid.
func (s Schedule) Factor(t int64) float64 {
	t = max(t, 0)
	switch s.Kind {
	case StepDecay:
		return math.Pow(s.Gamma, float64(t/s.Every))
	case Cosine:
		if t >= s.Length {
			return s.Floor
		}
		return s.Floor + (1-s.Floor)*0.5*(1+math.Cos(math.Pi*float64(t)/float64(s.Length)))
	}
	return 1
}
