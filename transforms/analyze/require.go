package analyze

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/muonml/muon/internal/printable"
	"github.com/muonml/muon/transforms/featurize"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*requireFn)(nil)).Elem())
}

// Metrics of Require: how many features were constant over the rows, and
// (up to MaxConstantNames) which, as counters named MetricConstant/<name>.
const (
	MetricConstantFeatures = "constant_features"
	MetricConstant         = "constant"
	MaxConstantNames       = 16
)

// Group is a run of features that one source makes (a channel's value or
// its window statistics): features [From, To).
type Group struct {
	Name     string
	From, To int
}

// RequireParams configures Require.
type RequireParams struct {
	// Groups are the sources whose features must have a value in at least
	// one row; What names them in errors (e.g. "features.channels").
	Groups []Group
	What   string
	// Names are the features' names, for the warnings. Default: indexes.
	Names []string
	// Labels, when set, are the only labels rows may carry (a classifier's
	// classes); LabelsWhat names them in errors.
	Labels     []string
	LabelsWhat string
}

// Require passes the statistics of Features through (PCollection<Spec>,
// a singleton) once it has checked them: a group none of whose features
// has a value in any row (a channel the data never carries) fails the job,
// before anything is trained on features that are all missing; features
// that are constant over the rows are counted and named in the metrics
// (Namespace) and logged: they carry nothing to learn from.
//
// seen, PCollection<featurize.SeenNames> (one element, or none when the
// rows do not come from readings), names what the readings carried in the
// error of a missing group.
func Require(s beam.Scope, p RequireParams, stats, seen beam.PCollection) beam.PCollection {
	s = s.Scope("analyze.Require")
	return beam.ParDo(s, &requireFn{Params: p}, stats, beam.SideInput{Input: seen})
}

// requireFn runs once per job: reflection-registered.
type requireFn struct {
	Params RequireParams
}

func (fn *requireFn) ProcessElement(ctx context.Context, sp Spec, seenIter func(*featurize.SeenNames) bool, emit func(Spec)) error {
	if sp.Rows == 0 {
		emit(sp)
		return nil
	}
	var missing []string
	for _, g := range fn.Params.Groups {
		if g.From < 0 || g.To > len(sp.Count) || g.From >= g.To {
			return fmt.Errorf("analyze.Require: group %q covers features [%d, %d) of %d", g.Name, g.From, g.To, len(sp.Count))
		}
		none := true
		for i := g.From; i < g.To; i++ {
			if sp.Count[i] > 0 {
				none = false
				break
			}
		}
		if none {
			missing = append(missing, fmt.Sprintf("%q", g.Name))
		}
	}
	if len(missing) > 0 {
		had := ""
		var seen featurize.SeenNames
		if seenIter(&seen) && len(seen.Names) > 0 {
			names := make([]string, len(seen.Names))
			for i, n := range seen.Names {
				names[i] = fmt.Sprintf("%q", printable.String(n, 40))
			}
			more := ""
			if seen.More > 0 {
				more = fmt.Sprintf(" and %d more", seen.More)
			}
			had = fmt.Sprintf("; the readings carry %s%s", strings.Join(names, ", "), more)
		}
		return fmt.Errorf("%s: %s never has a value in the %d rows: no reading carries a value of that name (names must match the readings' value names exactly, case included; muon produce names .ts channels dim0, dim1, …)%s",
			fn.Params.What, strings.Join(missing, ", "), sp.Rows, had)
	}
	if len(fn.Params.Labels) > 0 {
		known := map[string]bool{}
		for _, l := range fn.Params.Labels {
			known[l] = true
		}
		var unknown, seen []string
		for i, l := range sp.Labels {
			seen = append(seen, fmt.Sprintf("%s (%d)", printable.String(l, 40), sp.LabelCounts[i]))
			if !known[l] {
				unknown = append(unknown, fmt.Sprintf("%q", printable.String(l, 40)))
			}
		}
		if len(unknown) > 0 {
			return fmt.Errorf("%s: the rows carry label(s) %s that are not among the classes %q; the labels seen, with their rows: %s",
				fn.Params.LabelsWhat, strings.Join(unknown[:min(len(unknown), 10)], ", "), fn.Params.Labels, strings.Join(seen[:min(len(seen), 40)], ", "))
		}
	}
	var constant []string
	for i := range sp.Std {
		if sp.Count[i] > 0 && sp.Std[i] == 0 {
			name := fmt.Sprintf("feature %d", i)
			if i < len(fn.Params.Names) {
				name = fn.Params.Names[i]
			}
			constant = append(constant, name)
		}
	}
	if len(constant) > 0 {
		beam.NewCounter(Namespace, MetricConstantFeatures).Inc(ctx, int64(len(constant)))
		for _, c := range constant[:min(len(constant), MaxConstantNames)] {
			beam.NewCounter(Namespace, MetricConstant+"/"+printable.String(c, 120)).Inc(ctx, 1)
		}
		log.Warnf(ctx, "analyze: %d of %d features are constant over the %d rows (%s): they carry nothing to learn from", len(constant), len(sp.Std), sp.Rows, strings.Join(constant[:min(len(constant), 5)], ", "))
	}
	emit(sp)
	return nil
}
