//go:build integration

package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/records"
)

// pythonFor returns the Python of integration/python/venv.sh's venv
// (MUON_PYTHON), skipping the test without one unless MUON_REQUIRE_PYTHON=1.
func pythonFor(t *testing.T) string {
	t.Helper()
	py := os.Getenv("MUON_PYTHON")
	switch {
	case py != "":
		return py
	case os.Getenv("MUON_REQUIRE_PYTHON") == "1":
		t.Fatal("MUON_REQUIRE_PYTHON=1 but MUON_PYTHON is not set: make one with export \"$(integration/python/venv.sh)\"")
	default:
		t.Skip("MUON_PYTHON not set: the pyarrow check is skipped (export \"$(integration/python/venv.sh)\" makes one)")
	}
	return ""
}

// pyFile and the rows are what integration/python/read_parquet.py prints.
type pyFile struct {
	Path        string            `json:"path"`
	Rows        int64             `json:"rows"`
	RowGroups   int               `json:"row_groups"`
	Metadata    map[string]string `json:"metadata"`
	Compression []string          `json:"compression"`
}

type pyArchive[R any] struct {
	Schema   map[string]string `json:"schema"`
	Nullable map[string]bool   `json:"nullable"`
	Files    []pyFile          `json:"files"`
	Rows     []R               `json:"rows"`
}

type pyFeatureRow struct {
	Key      string   `json:"key"`
	Time     int64    `json:"time"`
	Features []string `json:"features"`
	Label    *string  `json:"label"`
	ID       string   `json:"id"`
	Date     string   `json:"date"`
	Hour     int      `json:"hour"`
}

type pyReadingRow struct {
	Device    string      `json:"device"`
	Time      int64       `json:"time"`
	TimeNanos int32       `json:"time_nanos"`
	Values    [][2]string `json:"values"`
	Label     *string     `json:"label"`
	Topic     string      `json:"topic"`
	Partition int32       `json:"partition"`
	Offset    int64       `json:"offset"`
	Date      string      `json:"date"`
	Hour      int         `json:"hour"`
}

type pyOutput struct {
	Pyarrow  string                  `json:"pyarrow"`
	Features pyArchive[pyFeatureRow] `json:"features"`
	Readings pyArchive[pyReadingRow] `json:"readings"`
}

// parquetSpecial are float64s whose bits must survive: NaN (and a NaN with
// a payload), ±Inf, -0, the extremes.
var parquetSpecial = []float64{math.NaN(), math.Float64frombits(0x7ff4000000000001), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.SmallestNonzeroFloat64, math.MaxFloat64, 0.1}

const parquetDim = 5

// parquetFeatures makes n rows from start, step apart: labels cycle null,
// "" and "walk".
func parquetFeatures(n int, start time.Time, step time.Duration, seed int) arrowio.Batch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrowio.RowSchema(parquetDim))
	defer b.Release()
	fl := b.Field(arrowio.FeaturesIndex).(*array.FixedSizeListBuilder)
	vals := fl.ValueBuilder().(*array.Float64Builder)
	for i := 0; i < n; i++ {
		b.Field(arrowio.KeyIndex).(*array.StringBuilder).Append(fmt.Sprintf("dev-%d", i%3))
		b.Field(arrowio.TimeIndex).(*array.TimestampBuilder).Append(arrow.Timestamp(start.Add(time.Duration(i) * step).UnixMilli()))
		fl.Append(true)
		for j := 0; j < parquetDim; j++ {
			v := float64(i*parquetDim+j) / 3
			if k := i*parquetDim + j; k%4 == 1 {
				v = parquetSpecial[k%len(parquetSpecial)]
			}
			vals.Append(v)
		}
		switch l := b.Field(arrowio.LabelIndex).(*array.StringBuilder); i % 3 {
		case 0:
			l.AppendNull()
		case 1:
			l.Append("")
		default:
			l.Append("walk")
		}
		b.Field(arrowio.IDIndex).(*array.StringBuilder).Append(fmt.Sprintf("sensors/%d/%d", seed, i))
		// Feature files do not keep the source columns: they read back null.
		for _, c := range []int{arrowio.SourceTopicIndex, arrowio.SourcePartitionIndex, arrowio.SourceOffsetIndex} {
			b.Field(c).AppendNull()
		}
	}
	return arrowio.Batch{Record: b.NewRecord()}
}

// parquetReadings are readings as decode makes them, with the times it can
// produce: RFC 3339 with nanoseconds, epoch and Kafka milliseconds, the
// edges of the years 0000–9999 and of int64 milliseconds.
func parquetReadings(n int) []records.Reading {
	t0 := time.Date(2024, 5, 1, 13, 7, 0, 0, time.UTC)
	times := []time.Time{
		t0.Add(123456789 * time.Nanosecond),
		time.UnixMilli(1714568400123).UTC(),
		time.Date(0, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.UnixMilli(math.MaxInt64).UTC(),
		time.UnixMilli(-1).UTC(),
	}
	out := make([]records.Reading, n)
	for i := range out {
		ts := times[i%len(times)]
		if ts.UnixMilli() != math.MaxInt64 {
			ts = ts.Add(time.Duration(i/len(times)) * time.Minute)
		}
		r := records.Reading{
			Device: fmt.Sprintf("dev-%d", i%4),
			Time:   ts,
			Source: records.Source{Topic: "sensors", Partition: i % 3, Offset: int64(i)},
		}
		if i%3 != 0 {
			r.Label = "walk"
		}
		for j := 0; j < i%4; j++ {
			r.Values = append(r.Values, records.Value{Name: fmt.Sprintf("v%d", j), Value: parquetSpecial[(i+j)%len(parquetSpecial)]})
		}
		out[i] = r
	}
	return out
}

func bitsHex(v float64) string { return fmt.Sprintf("%016x", math.Float64bits(v)) }

// partitionOf is the date and hour pyarrow reads from a row's directories.
func partitionOf(ms int64) (string, int) {
	dir := filepath.ToSlash(parquetio.PartitionDir(time.UnixMilli(ms)))
	date, hour, _ := strings.Cut(dir, "/")
	h, _ := strconv.Atoi(strings.TrimPrefix(hour, "hour="))
	return strings.TrimPrefix(date, "date="), h
}

// Archives written by parquetio read back in pyarrow.dataset, with Hive
// partitioning, exactly: every value, every float's bits, null apart from
// empty labels, the time to the nanosecond; and the types are the natural
// ones.
func TestParquetReadableByPyarrow(t *testing.T) {
	python := pythonFor(t)
	root := t.TempDir()
	featuresRoot, readingsRoot := filepath.Join(root, "features"), filepath.Join(root, "readings")
	names := []string{"ax", "ay", "az", "temp", "hum"}

	// Features: two batches over hours 12–16, written as by two workers.
	start := time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)
	batches := []arrowio.Batch{parquetFeatures(300, start, 47*time.Second, 1), parquetFeatures(120, start.Add(time.Hour), 90*time.Second, 2)}
	var written []parquetio.File
	for _, b := range batches {
		fa, err := parquetio.NewFeatureArchive(featuresRoot, parquetio.FeatureOptions{Dim: parquetDim, Names: names, RowGroupRows: 32}, parquetio.ArchiveOptions{MaxFileRows: 50})
		if err != nil {
			t.Fatal(err)
		}
		if err := fa.Write(b); err != nil {
			t.Fatal(err)
		}
		files, err := fa.Close()
		if err != nil {
			t.Fatal(err)
		}
		written = append(written, files...)
	}
	readings := parquetReadings(90)
	ra, err := parquetio.NewReadingArchive(readingsRoot, parquetio.ReadingOptions{RowGroupRows: 8}, parquetio.ArchiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ra.Write(readings...); err != nil {
		t.Fatal(err)
	}
	readingFiles, err := ra.Close()
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(python, filepath.Join("python", "read_parquet.py"), featuresRoot, readingsRoot)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("read_parquet.py: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var py pyOutput
	if err := json.Unmarshal(out, &py); err != nil {
		t.Fatalf("read_parquet.py printed %.500s: %v", out, err)
	}
	t.Logf("pyarrow %s read %d feature rows in %d files, %d readings in %d files", py.Pyarrow, len(py.Features.Rows), len(py.Features.Files), len(py.Readings.Rows), len(py.Readings.Files))

	// The types pyarrow sees.
	wantFeatureSchema := map[string]string{
		"key": "string", "time": "timestamp[ms, tz=UTC]", "features": "list<element: double not null>",
		"label": "string", "id": "string", "date": "string", "hour": "int32",
	}
	if !reflect.DeepEqual(py.Features.Schema, wantFeatureSchema) {
		t.Errorf("pyarrow sees features as %v, want %v", py.Features.Schema, wantFeatureSchema)
	}
	if py.Features.Nullable["label"] != true || py.Features.Nullable["features"] || py.Features.Nullable["key"] {
		t.Errorf("feature nullability %v: only label (and the partitions) should be nullable", py.Features.Nullable)
	}
	wantReadingSchema := map[string]string{
		"device": "string", "time": "timestamp[ms, tz=UTC]", "time_nanos": "int32",
		"values": "list<element: struct<name: string not null, value: double not null> not null>",
		"label":  "string", "topic": "string", "partition": "int32", "offset": "int64", "date": "string", "hour": "int32",
	}
	if !reflect.DeepEqual(py.Readings.Schema, wantReadingSchema) {
		t.Errorf("pyarrow sees readings as %v, want %v", py.Readings.Schema, wantReadingSchema)
	}

	// The files and their metadata.
	checkFiles := func(kind string, got []pyFile, want []parquetio.File, meta map[string]string) {
		t.Helper()
		byPath := map[string]parquetio.File{}
		for _, f := range want {
			byPath[f.Path] = f
		}
		if len(got) != len(want) {
			t.Errorf("%s: pyarrow found %d files, parquetio wrote %d", kind, len(got), len(want))
		}
		for _, f := range got {
			w, ok := byPath[f.Path]
			if !ok || f.Rows != w.Rows {
				t.Errorf("%s: pyarrow found %s with %d rows; parquetio wrote %+v", kind, f.Path, f.Rows, w)
				continue
			}
			for k, v := range meta {
				if f.Metadata[k] != v {
					t.Errorf("%s: %s metadata %s = %q, want %q", kind, f.Path, k, f.Metadata[k], v)
				}
			}
			if want := filepath.ToSlash(parquetio.PartitionDir(w.Hour)); f.Metadata[parquetio.MetaPartition] != want {
				t.Errorf("%s: %s partition metadata %q, want %q", kind, f.Path, f.Metadata[parquetio.MetaPartition], want)
			}
			if !reflect.DeepEqual(f.Compression, []string{"ZSTD"}) {
				t.Errorf("%s: %s compression %v", kind, f.Path, f.Compression)
			}
		}
	}
	namesJSON, _ := json.Marshal(names)
	checkFiles("features", py.Features.Files, written, map[string]string{
		parquetio.MetaFormat: parquetio.FormatFeatures, parquetio.MetaDim: strconv.Itoa(parquetDim), parquetio.MetaNames: string(namesJSON),
	})
	checkFiles("readings", py.Readings.Files, readingFiles, map[string]string{parquetio.MetaFormat: parquetio.FormatReadings})

	// Every feature row, by id.
	var wantRows []pyFeatureRow
	for _, b := range batches {
		rec := b.Record
		vals, n, dim, err := arrowio.Features(rec)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			r := pyFeatureRow{
				Key:  rec.Column(arrowio.KeyIndex).(*array.String).Value(i),
				Time: int64(rec.Column(arrowio.TimeIndex).(*array.Timestamp).Value(i)),
				ID:   rec.Column(arrowio.IDIndex).(*array.String).Value(i),
			}
			for _, v := range vals[i*dim : (i+1)*dim] {
				r.Features = append(r.Features, bitsHex(v))
			}
			if l := rec.Column(arrowio.LabelIndex).(*array.String); l.IsValid(i) {
				s := l.Value(i)
				r.Label = &s
			}
			r.Date, r.Hour = partitionOf(r.Time)
			wantRows = append(wantRows, r)
		}
		b.Record.Release()
	}
	gotRows := py.Features.Rows
	sort.Slice(wantRows, func(i, j int) bool { return wantRows[i].ID < wantRows[j].ID })
	sort.Slice(gotRows, func(i, j int) bool { return gotRows[i].ID < gotRows[j].ID })
	if len(gotRows) != len(wantRows) {
		t.Fatalf("pyarrow read %d feature rows, want %d", len(gotRows), len(wantRows))
	}
	for i := range wantRows {
		if !reflect.DeepEqual(gotRows[i], wantRows[i]) {
			t.Fatalf("feature row %s:\n pyarrow %+v\n    want %+v", wantRows[i].ID, gotRows[i], wantRows[i])
		}
	}

	// Every reading, by offset.
	var wantReadings []pyReadingRow
	for _, r := range readings {
		ms := r.Time.UnixMilli()
		w := pyReadingRow{
			Device: r.Device, Time: ms, TimeNanos: int32(r.Time.Nanosecond() % 1e6),
			Topic: r.Source.Topic, Partition: int32(r.Source.Partition), Offset: r.Source.Offset,
			Values: [][2]string{},
		}
		for _, v := range r.Values {
			w.Values = append(w.Values, [2]string{v.Name, bitsHex(v.Value)})
		}
		if r.Label != "" {
			l := r.Label
			w.Label = &l
		}
		w.Date, w.Hour = partitionOf(ms)
		wantReadings = append(wantReadings, w)
	}
	gotReadings := py.Readings.Rows
	sort.Slice(gotReadings, func(i, j int) bool { return gotReadings[i].Offset < gotReadings[j].Offset })
	if len(gotReadings) != len(wantReadings) {
		t.Fatalf("pyarrow read %d readings, want %d", len(gotReadings), len(wantReadings))
	}
	for i := range wantReadings {
		if !reflect.DeepEqual(gotReadings[i], wantReadings[i]) {
			t.Fatalf("reading %d:\n pyarrow %+v\n    want %+v", i, gotReadings[i], wantReadings[i])
		}
	}
}
