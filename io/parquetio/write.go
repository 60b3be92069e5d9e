package parquetio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/records/wire"
)

func init() {
	t := reflect.TypeOf((*File)(nil)).Elem()
	beam.RegisterType(t)
	beam.RegisterCoder(t, encodeFile, decodeFile)
	register.DoFn3x1[context.Context, arrowio.Batch, func(beam.EventTime, File), error](&writeFeaturesFn{})
	register.DoFn3x1[context.Context, records.Reading, func(beam.EventTime, File), error](&writeReadingsFn{})
	register.Emitter2[beam.EventTime, File]()
}

// Namespaces of the writers' metrics (MetricFiles, MetricRows and
// MetricBytes, incremented once per bundle).
const (
	FeaturesNamespace = "parquetio.WriteFeatures"
	ReadingsNamespace = "parquetio.WriteReadings"
)

// Names of the writers' metrics.
const (
	MetricFiles = "files"
	MetricRows  = "rows"
	MetricBytes = "bytes"
)

// writeMetrics counts one writer's files, rows and bytes.
type writeMetrics struct{ files, rows, bytes beam.Counter }

func newWriteMetrics(ns string) writeMetrics {
	return writeMetrics{beam.NewCounter(ns, MetricFiles), beam.NewCounter(ns, MetricRows), beam.NewCounter(ns, MetricBytes)}
}

var (
	featuresMetrics = newWriteMetrics(FeaturesNamespace)
	readingsMetrics = newWriteMetrics(ReadingsNamespace)
)

// WriteParams configures WriteFeatures and WriteReadings.
type WriteParams struct {
	// Root is the archive's directory, created if missing; a relative path
	// is made absolute when the pipeline is built. Required.
	Root string
	// Dim is the number of features per row. Required by WriteFeatures,
	// ignored by WriteReadings.
	Dim int
	// Names names the features in every file's metadata. Default nil.
	Names []string
	// Prefix starts every file name. Default DefaultPrefix.
	Prefix string
	// RowGroupRows is the most rows in one row group. Default
	// DefaultRowGroupRows.
	RowGroupRows int
	// MaxFileRows is the most rows in one file. Default DefaultMaxFileRows.
	MaxFileRows int
	// MaxOpenFiles is the most files one worker keeps open, one per
	// partition. Default DefaultMaxOpenFiles.
	MaxOpenFiles int
	// Daily partitions by the UTC day of the event time instead of the
	// hour (ArchiveOptions.Daily). Default false.
	Daily bool
}

func (p *WriteParams) validate(name string, features bool) {
	if p.Root == "" {
		panic(fmt.Sprintf("%s: no Root directory", name))
	}
	root, err := filepath.Abs(p.Root)
	if err != nil {
		panic(fmt.Sprintf("%s: root %q: %v", name, p.Root, err))
	}
	p.Root = root
	ao := p.archive()
	if err := ao.check(); err != nil {
		panic(fmt.Sprintf("%s: %v", name, err))
	}
	if features {
		fo := p.features()
		if err := fo.check(); err != nil {
			panic(fmt.Sprintf("%s: %v", name, err))
		}
	} else if p.RowGroupRows < 0 {
		panic(fmt.Sprintf("%s: RowGroupRows %d < 0", name, p.RowGroupRows))
	}
}

func (p *WriteParams) archive() ArchiveOptions {
	return ArchiveOptions{Prefix: p.Prefix, MaxFileRows: p.MaxFileRows, MaxOpenFiles: p.MaxOpenFiles, Daily: p.Daily}
}

func (p *WriteParams) features() FeatureOptions {
	return FeatureOptions{Dim: p.Dim, Names: p.Names, RowGroupRows: p.RowGroupRows}
}

// WriteFeatures archives feature batches: PCollection<arrowio.Batch> of
// arrowio.RowSchema(Dim) → PCollection<File>, the files written. Each
// worker writes the rows of a bundle into one file per partition hour (or
// day) of their event time (FeatureArchive), and emits the files when the
// bundle ends, in the global window, stamped with the last millisecond of
// their partition. A retried bundle with the same rows replaces its files. It panics
// if p is invalid.
func WriteFeatures(s beam.Scope, p WriteParams, batches beam.PCollection) beam.PCollection {
	s = s.Scope("parquetio.WriteFeatures")
	p.validate("parquetio.WriteFeatures", true)
	return beam.ParDo(s, &writeFeaturesFn{Params: p}, batches)
}

// WriteReadings archives decoded readings: PCollection<records.Reading> →
// PCollection<File>, as WriteFeatures does. It panics if p is invalid.
func WriteReadings(s beam.Scope, p WriteParams, readings beam.PCollection) beam.PCollection {
	s = s.Scope("parquetio.WriteReadings")
	p.validate("parquetio.WriteReadings", false)
	return beam.ParDo(s, &writeReadingsFn{Params: p}, readings)
}

type writeFeaturesFn struct {
	Params WriteParams
	a      *FeatureArchive
}

func (fn *writeFeaturesFn) StartBundle(_ context.Context, _ func(beam.EventTime, File)) error {
	if fn.a != nil { // the last bundle failed
		fn.a.Abort()
	}
	a, err := NewFeatureArchive(fn.Params.Root, fn.Params.features(), fn.Params.archive())
	fn.a = a
	return err
}

func (fn *writeFeaturesFn) ProcessElement(_ context.Context, b arrowio.Batch, _ func(beam.EventTime, File)) error {
	if err := fn.a.Write(b); err != nil {
		return fmt.Errorf("parquetio.WriteFeatures: %w", err)
	}
	return nil
}

func (fn *writeFeaturesFn) FinishBundle(ctx context.Context, emit func(beam.EventTime, File)) error {
	files, err := fn.a.Close()
	fn.a = nil
	if err != nil {
		return fmt.Errorf("parquetio.WriteFeatures: %w", err)
	}
	featuresMetrics.emit(ctx, files, emit)
	return nil
}

// Teardown removes the temporary files of a bundle that failed.
func (fn *writeFeaturesFn) Teardown() {
	if fn.a != nil {
		fn.a.Abort()
	}
}

type writeReadingsFn struct {
	Params WriteParams
	a      *ReadingArchive
}

func (fn *writeReadingsFn) StartBundle(_ context.Context, _ func(beam.EventTime, File)) error {
	if fn.a != nil { // the last bundle failed
		fn.a.Abort()
	}
	a, err := NewReadingArchive(fn.Params.Root, ReadingOptions{RowGroupRows: fn.Params.RowGroupRows}, fn.Params.archive())
	fn.a = a
	return err
}

func (fn *writeReadingsFn) ProcessElement(_ context.Context, r records.Reading, _ func(beam.EventTime, File)) error {
	if err := fn.a.Write(r); err != nil {
		return fmt.Errorf("parquetio.WriteReadings: %w", err)
	}
	return nil
}

func (fn *writeReadingsFn) FinishBundle(ctx context.Context, emit func(beam.EventTime, File)) error {
	files, err := fn.a.Close()
	fn.a = nil
	if err != nil {
		return fmt.Errorf("parquetio.WriteReadings: %w", err)
	}
	readingsMetrics.emit(ctx, files, emit)
	return nil
}

// Teardown removes the temporary files of a bundle that failed.
func (fn *writeReadingsFn) Teardown() {
	if fn.a != nil {
		fn.a.Abort()
	}
}

// emit emits the files of a bundle and counts them.
func (m writeMetrics) emit(ctx context.Context, files []File, emit func(beam.EventTime, File)) {
	var rows, bytes int64
	for _, f := range files {
		emit(mtime.FromTime(f.End().Add(-time.Millisecond)), f)
		rows += f.Rows
		bytes += f.Bytes
	}
	if len(files) > 0 {
		m.files.Inc(ctx, int64(len(files)))
		m.rows.Inc(ctx, rows)
		m.bytes.Inc(ctx, bytes)
	}
}

var errCorruptFile = errors.New("parquetio: corrupt File encoding")

func encodeFile(f File) ([]byte, error) {
	b := make([]byte, 0, 32+len(f.Path))
	b = wire.AppendString(b, f.Path)
	b = wire.AppendTime(b, f.Hour)
	b = binary.AppendVarint(b, f.Rows)
	b = binary.AppendVarint(b, f.Bytes)
	var daily byte
	if f.Daily {
		daily = 1
	}
	return append(b, daily), nil
}

func decodeFile(b []byte) (File, error) {
	r := wire.NewReader(b, errCorruptFile)
	f := File{Path: r.String(), Hour: r.Time(), Rows: r.Varint(), Bytes: r.Varint()}
	switch r.Byte() {
	case 0:
	case 1:
		f.Daily = true
	default:
		r.Fail()
	}
	return f, r.Done()
}
