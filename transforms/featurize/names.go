package featurize

import (
	"reflect"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/records"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*SeenNames)(nil)).Elem())
	register.Combiner3[SeenNames, records.Reading, SeenNames](&namesFn{})
	register.Iter1[SeenNames]()
}

// MaxNames is the most value names ValueNames keeps.
const MaxNames = 64

// SeenNames are value names the readings carried, sorted; More counts those
// beyond MaxNames that were left out.
type SeenNames struct {
	Names []string
	More  int64
}

// ValueNames collects the value names of readings, for errors that say
// what the data had: PCollection<records.Reading> → PCollection<SeenNames>,
// one element (the MaxNames first in sorted order).
func ValueNames(s beam.Scope, readings beam.PCollection) beam.PCollection {
	s = s.Scope("featurize.ValueNames")
	return beam.Combine(s, &namesFn{}, readings)
}

type namesFn struct{}

func (namesFn) CreateAccumulator() SeenNames { return SeenNames{} }

func (namesFn) AddInput(a SeenNames, r records.Reading) SeenNames {
	for _, v := range r.Values {
		a = add(a, v.Name)
	}
	return a
}

func add(a SeenNames, name string) SeenNames {
	i, found := slices.BinarySearch(a.Names, name)
	switch {
	case found:
	case len(a.Names) < MaxNames:
		a.Names = slices.Insert(a.Names, i, name)
	case i < len(a.Names):
		// Keep the first MaxNames in order: name displaces the last.
		a.Names = slices.Insert(a.Names[:MaxNames-1], i, name)
		a.More++
	default:
		a.More++
	}
	return a
}

func (namesFn) MergeAccumulators(a, b SeenNames) SeenNames {
	for _, n := range b.Names {
		a = add(a, n)
	}
	a.More += b.More
	return a
}

func (namesFn) ExtractOutput(a SeenNames) SeenNames { return a }
