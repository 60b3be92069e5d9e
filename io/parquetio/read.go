package parquetio

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/records"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*readUnit)(nil)).Elem())
	register.DoFn3x1[context.Context, []byte, func(readUnit), error](&expandFn{})
	register.DoFn3x1[context.Context, readUnit, func(beam.EventTime, arrowio.Batch), error](&readFeaturesFn{})
	register.DoFn3x1[context.Context, readUnit, func(beam.EventTime, records.Reading), error](&readReadingsFn{})
	register.Emitter1[readUnit]()
	register.Emitter2[beam.EventTime, arrowio.Batch]()
	register.Emitter2[beam.EventTime, records.Reading]()
}

// Metrics of the reads.
var (
	readFiles     = beam.NewCounter("parquetio.Read", "files")
	readRowGroups = beam.NewCounter("parquetio.Read", "row_groups")
	readRows      = beam.NewCounter("parquetio.Read", "rows")
)

// ReadParams configures ReadFeatures and ReadReadings.
type ReadParams struct {
	// Paths name the files to read, as Files lists them: files,
	// directories (an archive's root, or a partition in it) and glob
	// patterns. Relative paths are made absolute when the pipeline is
	// built; the listing happens when it runs. Required.
	Paths []string
	// Dim is the number of features per row every file must have. Default
	// 0: the files' own, which must all agree. Ignored by ReadReadings.
	Dim int
	// BatchRows is the most rows in one batch. Default DefaultBatchRows.
	// Ignored by ReadReadings.
	BatchRows int
	// From and To select the partitions (hours or days) that overlap
	// [From, To): rows are not filtered within a partition. Zero values
	// leave that end open. When either is set, every file must lie in a
	// date=…/hour=… or date=… partition.
	From, To time.Time
}

func (p *ReadParams) validate(name string) {
	if len(p.Paths) == 0 {
		panic(fmt.Sprintf("%s: no Paths to read", name))
	}
	paths := make([]string, len(p.Paths))
	for i, path := range p.Paths {
		abs, err := filepath.Abs(path)
		if err != nil || path == "" {
			panic(fmt.Sprintf("%s: path %q: %v", name, path, err))
		}
		paths[i] = abs
	}
	p.Paths = paths
	if p.Dim < 0 || p.Dim > maxDim || p.BatchRows < 0 {
		panic(fmt.Sprintf("%s: Dim %d must be 0 to %d and BatchRows %d ≥ 0", name, p.Dim, maxDim, p.BatchRows))
	}
	if p.BatchRows == 0 {
		p.BatchRows = DefaultBatchRows
	}
	if !p.From.IsZero() && !p.To.IsZero() && !p.From.Before(p.To) {
		panic(fmt.Sprintf("%s: From %v is not before To %v", name, p.From, p.To))
	}
}

// ReadFeatures reads feature archives: impulse → PCollection<arrowio.Batch>
// of arrowio.RowSchema(d), at most BatchRows rows each, stamped with their
// latest event time. The listing checks every file's format and dimension;
// then each row group is read by whichever worker gets it, after a
// reshuffle. It panics if p is invalid.
func ReadFeatures(s beam.Scope, p ReadParams) beam.PCollection {
	s = s.Scope("parquetio.ReadFeatures")
	p.validate("parquetio.ReadFeatures")
	units := beam.ParDo(s, &expandFn{Params: p, Format: FormatFeatures}, beam.Impulse(s))
	return beam.ParDo(s, &readFeaturesFn{Params: p}, beam.Reshuffle(s, units))
}

// ReadReadings reads readings archives: impulse →
// PCollection<records.Reading>, each stamped with its event time, row
// groups spread over workers as ReadFeatures does. It panics if p is
// invalid.
func ReadReadings(s beam.Scope, p ReadParams) beam.PCollection {
	s = s.Scope("parquetio.ReadReadings")
	p.validate("parquetio.ReadReadings")
	units := beam.ParDo(s, &expandFn{Params: p, Format: FormatReadings}, beam.Impulse(s))
	return beam.ParDo(s, &readReadingsFn{}, beam.Reshuffle(s, units))
}

// readUnit is one row group of one file: the unit of parallel reading.
type readUnit struct {
	Path     string
	RowGroup int
	Rows     int64
	// First marks a file's first unit, which counts the file.
	First bool
}

// expandFn lists the files, checks them and emits their row groups.
type expandFn struct {
	Params ReadParams
	Format string
}

func (fn *expandFn) ProcessElement(ctx context.Context, _ []byte, emit func(readUnit)) error {
	name := "parquetio.ReadFeatures"
	if fn.Format == FormatReadings {
		name = "parquetio.ReadReadings"
	}
	files, err := Files(fn.Params.Paths...)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	dim, dimFrom := fn.Params.Dim, ""
	for _, path := range files {
		if ok, err := fn.inRange(path); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		} else if !ok {
			continue
		}
		var groups []int64
		if fn.Format == FormatFeatures {
			r, err := OpenFeatures(path, ReadOptions{Dim: dim})
			if err != nil {
				if dimFrom != "" {
					err = fmt.Errorf("%w (the dimension of %s)", err, dimFrom)
				}
				return fmt.Errorf("%s: %w", name, err)
			}
			if dim == 0 {
				dim, dimFrom = r.Dim(), path
			}
			groups = rowGroupRows(r.f.RowGroups())
			r.Close()
		} else {
			r, err := OpenReadings(path)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			groups = rowGroupRows(r.f.RowGroups())
			r.Close()
		}
		first := true
		for i, n := range groups {
			if n > 0 {
				emit(readUnit{Path: path, RowGroup: i, Rows: n, First: first})
				first = false
			}
		}
	}
	return nil
}

// inRange reports whether a file's partition overlaps [From, To).
func (fn *expandFn) inRange(path string) (bool, error) {
	return InRange(path, fn.Params.From, fn.Params.To)
}

// InRange reports whether the partition of the file at path (its
// date=/hour= folders) overlaps [from, to); a zero bound is open. A file
// outside partitions is an error unless both bounds are zero.
func InRange(path string, from, to time.Time) (bool, error) {
	if from.IsZero() && to.IsZero() {
		return true, nil
	}
	start, end, ok := PartitionSpan(path)
	if !ok {
		return false, fmt.Errorf("%s is not in a date=YYYY-MM-DD/hour=HH or date=YYYY-MM-DD partition, so From and To cannot select it", path)
	}
	return (from.IsZero() || end.After(from)) && (to.IsZero() || start.Before(to)), nil
}

func rowGroupRows[G interface{ NumRows() int64 }](groups []G) []int64 {
	out := make([]int64, len(groups))
	for i, g := range groups {
		out[i] = g.NumRows()
	}
	return out
}

type readFeaturesFn struct {
	Params ReadParams
	// r is the file of the last unit: units of one file often follow each
	// other, and opening parses the footer.
	r *FeatureReader
}

func (fn *readFeaturesFn) ProcessElement(ctx context.Context, u readUnit, emit func(beam.EventTime, arrowio.Batch)) error {
	if fn.r == nil || fn.r.name != u.Path {
		fn.close()
		r, err := OpenFeatures(u.Path, ReadOptions{Dim: fn.Params.Dim, BatchRows: fn.Params.BatchRows, Mem: memory.DefaultAllocator})
		if err != nil {
			return fmt.Errorf("parquetio.ReadFeatures: %w", err)
		}
		fn.r = r
	}
	var rows int64
	err := fn.r.ReadRowGroup(u.RowGroup, func(b arrowio.Batch) error {
		rows += b.Record.NumRows()
		emit(latest(b.Record), b) // the pipeline owns it from here
		return nil
	})
	if err != nil {
		return fmt.Errorf("parquetio.ReadFeatures: %w", err)
	}
	countRead(ctx, u, rows)
	return nil
}

func (fn *readFeaturesFn) FinishBundle(context.Context, func(beam.EventTime, arrowio.Batch)) error {
	fn.close()
	return nil
}

func (fn *readFeaturesFn) Teardown() { fn.close() }

func (fn *readFeaturesFn) close() {
	if fn.r != nil {
		fn.r.Close()
		fn.r = nil
	}
}

// latest is the event time of a batch: its latest row's.
func latest(rec arrow.Record) beam.EventTime {
	ts := rec.Column(arrowio.TimeIndex).(*array.Timestamp).TimestampValues()
	m := ts[0]
	for _, t := range ts[1:] {
		m = max(m, t)
	}
	return mtime.FromMilliseconds(int64(m))
}

type readReadingsFn struct {
	r *ReadingReader
}

func (fn *readReadingsFn) ProcessElement(ctx context.Context, u readUnit, emit func(beam.EventTime, records.Reading)) error {
	if fn.r == nil || fn.r.name != u.Path {
		fn.close()
		r, err := OpenReadings(u.Path)
		if err != nil {
			return fmt.Errorf("parquetio.ReadReadings: %w", err)
		}
		fn.r = r
	}
	var rows int64
	err := fn.r.ReadRowGroup(u.RowGroup, func(r records.Reading) error {
		rows++
		emit(mtime.FromTime(r.Time), r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("parquetio.ReadReadings: %w", err)
	}
	countRead(ctx, u, rows)
	return nil
}

func (fn *readReadingsFn) FinishBundle(context.Context, func(beam.EventTime, records.Reading)) error {
	fn.close()
	return nil
}

func (fn *readReadingsFn) Teardown() { fn.close() }

func (fn *readReadingsFn) close() {
	if fn.r != nil {
		fn.r.Close()
		fn.r = nil
	}
}

func countRead(ctx context.Context, u readUnit, rows int64) {
	if u.First {
		readFiles.Inc(ctx, 1)
	}
	readRowGroups.Inc(ctx, 1)
	readRows.Inc(ctx, rows)
}
