package parquetio_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/records"
)

func TestPartitionDir(t *testing.T) {
	for _, tt := range []struct {
		t    time.Time
		want string
	}{
		{t0, "date=2024-05-01/hour=13"},
		{t0.Add(59*time.Minute + 59*time.Second + 999*time.Millisecond), "date=2024-05-01/hour=13"},
		{time.Date(2024, 5, 1, 23, 30, 0, 0, time.FixedZone("UTC-2", -2*3600)), "date=2024-05-02/hour=01"},
		{time.UnixMilli(-1), "date=1969-12-31/hour=23"},
		{time.Time{}, "date=0001-01-01/hour=00"},
	} {
		got := filepath.ToSlash(parquetio.PartitionDir(tt.t))
		if got != tt.want {
			t.Errorf("PartitionDir(%v) = %s, want %s", tt.t, got, tt.want)
		}
		hour, ok := parquetio.PartitionHour(filepath.Join("root", filepath.FromSlash(got), "part-x.parquet"))
		if !ok || !hour.Equal(tt.t.Truncate(time.Hour)) {
			t.Errorf("PartitionHour of %s = %v, %v", got, hour, ok)
		}
	}
	for _, bad := range []string{"a/b/c.parquet", "date=2024-02-30/hour=01/x.parquet", "date=2024-05-01/hour=24/x.parquet", "date=2024-5-1/hour=1/x.parquet", "hour=01/date=2024-05-01/x.parquet", "date=2024-05-01/x.parquet"} {
		if h, ok := parquetio.PartitionHour(filepath.FromSlash(bad)); ok {
			t.Errorf("PartitionHour(%s) = %v, want false", bad, h)
		}
	}
}

// tree lists the files under root, relative and with slashes.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			rel, _ := filepath.Rel(root, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

var partName = regexp.MustCompile(`^date=\d{4}-\d\d-\d\d/hour=\d\d/part-[0-9a-f]{16}\.parquet$`)

func TestFeatureArchiveLayout(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	root := t.TempDir()
	// 300 rows 40 s apart from 12:40: hours 12, 13, 14, 15 of 2024-05-01.
	b := featureBatch(t, mem, 300, 3, t0.Add(-20*time.Minute), 40*time.Second)
	defer b.Record.Release()
	a, err := parquetio.NewFeatureArchive(root, parquetio.FeatureOptions{Dim: 3}, parquetio.ArchiveOptions{MaxFileRows: 50})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Write(b); err != nil {
		t.Fatal(err)
	}
	files, err := a.Close()
	if err != nil {
		t.Fatal(err)
	}
	perHour := map[string]int64{}
	var total int64
	for _, f := range files {
		rel, _ := filepath.Rel(root, f.Path)
		rel = filepath.ToSlash(rel)
		if !partName.MatchString(rel) {
			t.Errorf("file %s is not in the layout", rel)
		}
		if want := filepath.ToSlash(parquetio.PartitionDir(f.Hour)); !strings.HasPrefix(rel, want+"/") {
			t.Errorf("file %s of hour %v is not under %s", rel, f.Hour, want)
		}
		if f.Rows > 50 || f.Rows < 1 {
			t.Errorf("file %s has %d rows, want 1 to 50", rel, f.Rows)
		}
		if st, err := os.Stat(f.Path); err != nil || st.Size() != f.Bytes {
			t.Errorf("file %s: size %d, File says %d (%v)", rel, st.Size(), f.Bytes, err)
		}
		perHour[rel[:len("date=2024-05-01/hour=13")]] += f.Rows
		total += f.Rows
	}
	// 12:40–13:00 is 30 rows, then 90 an hour.
	want := map[string]int64{"date=2024-05-01/hour=12": 30, "date=2024-05-01/hour=13": 90, "date=2024-05-01/hour=14": 90, "date=2024-05-01/hour=15": 90}
	if !reflect.DeepEqual(perHour, want) || total != 300 {
		t.Errorf("rows per hour %v, want %v", perHour, want)
	}
	if got := tree(t, root); len(got) != len(files) {
		t.Errorf("%d files on disk (%v), %d returned", len(got), got, len(files))
	}

	// Reading the archive back gives every row once, hour by hour.
	paths, err := parquetio.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []arrowio.Batch
	for _, p := range paths {
		r, err := parquetio.OpenFeatures(p, parquetio.ReadOptions{Dim: 3, Mem: mem})
		if err != nil {
			t.Fatal(err)
		}
		if part, _ := r.Metadata(parquetio.MetaPartition); !strings.Contains(filepath.ToSlash(p), part+"/") {
			t.Errorf("%s: partition metadata %q", p, part)
		}
		if err := r.Read(func(b arrowio.Batch) error { got = append(got, b); return nil }); err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	defer release(got)
	sortByTime(got)
	sameRows(t, []arrowio.Batch{b}, got)
}

// sortByTime orders single-hour batches by their first row's time.
func sortByTime(bs []arrowio.Batch) {
	sort.Slice(bs, func(i, j int) bool {
		return bs[i].Record.Column(arrowio.TimeIndex).(interface{ ValueStr(int) string }).ValueStr(0) <
			bs[j].Record.Column(arrowio.TimeIndex).(interface{ ValueStr(int) string }).ValueStr(0)
	})
}

// The same rows make the same files, byte for byte: a retried bundle
// replaces its files.
func TestArchiveNamesAreDeterministic(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	root := t.TempDir()
	write := func(rows int) []string {
		b := featureBatch(t, mem, rows, 2, t0, time.Minute)
		defer b.Record.Release()
		a, err := parquetio.NewFeatureArchive(root, parquetio.FeatureOptions{Dim: 2}, parquetio.ArchiveOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Write(b); err != nil {
			t.Fatal(err)
		}
		files, err := a.Close()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range files {
			out = append(out, f.Path)
		}
		return out
	}
	first := write(100)
	data, err := os.ReadFile(first[0])
	if err != nil {
		t.Fatal(err)
	}
	if again := write(100); !reflect.DeepEqual(first, again) {
		t.Errorf("the same rows made %v, then %v", first, again)
	}
	if again, _ := os.ReadFile(first[0]); !bytes.Equal(data, again) {
		t.Error("the same rows made different bytes")
	}
	if n := len(tree(t, root)); n != len(first) {
		t.Errorf("%d files after writing the same rows twice, want %d", n, len(first))
	}
	// Other rows, other names.
	if other := write(99); reflect.DeepEqual(other, first[:len(other)]) {
		t.Errorf("different rows made the same names %v", other)
	}

	ra := func() []string {
		a, err := parquetio.NewReadingArchive(root, parquetio.ReadingOptions{}, parquetio.ArchiveOptions{Prefix: "readings"})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Write(sampleReadings(40)...); err != nil {
			t.Fatal(err)
		}
		files, err := a.Close()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range files {
			out = append(out, f.Path)
		}
		return out
	}
	if r1, r2 := ra(), ra(); !reflect.DeepEqual(r1, r2) {
		t.Errorf("the same readings made %v, then %v", r1, r2)
	}
}

func TestReadingArchiveRoundTrip(t *testing.T) {
	root := t.TempDir()
	want := sampleReadings(200)
	a, err := parquetio.NewReadingArchive(root, parquetio.ReadingOptions{RowGroupRows: 10}, parquetio.ArchiveOptions{MaxOpenFiles: 2, MaxFileRows: 7})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(want); i += 13 {
		if err := a.Write(want[i:min(i+13, len(want))]...); err != nil {
			t.Fatal(err)
		}
	}
	files, err := a.Close()
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, f := range files {
		rows += f.Rows
		if got := parquetio.PartitionDir(f.Hour); !strings.Contains(f.Path, got) {
			t.Errorf("%s not under %s", f.Path, got)
		}
	}
	if rows != int64(len(want)) {
		t.Errorf("%d rows in files, want %d", rows, len(want))
	}
	paths, err := parquetio.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(files) {
		t.Errorf("Files lists %d, the archive wrote %d", len(paths), len(files))
	}
	var got []records.Reading
	for _, p := range paths {
		r, err := parquetio.OpenReadings(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Read(func(x records.Reading) error { got = append(got, x); return nil }); err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	sameReadings(t, sortReadings(want), sortReadings(got))
}

// sortReadings orders readings by their offset, unique in sampleReadings.
func sortReadings(rs []records.Reading) []records.Reading {
	out := append([]records.Reading(nil), rs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Source.Offset < out[j].Source.Offset })
	return out
}

func TestArchiveAbortLeavesNothing(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	root := t.TempDir()
	b := featureBatch(t, mem, 20, 2, t0, 10*time.Minute)
	defer b.Record.Release()
	a, err := parquetio.NewFeatureArchive(root, parquetio.FeatureOptions{Dim: 2}, parquetio.ArchiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Write(b); err != nil {
		t.Fatal(err)
	}
	// While the files are being written, readers see nothing.
	temps := tree(t, root)
	if len(temps) == 0 {
		t.Fatal("no temporary files while writing")
	}
	for _, f := range temps {
		if !strings.HasPrefix(filepath.Base(f), ".part-") {
			t.Errorf("file %s visible while writing", f)
		}
	}
	if paths, err := parquetio.Files(root); err != nil || len(paths) != 0 {
		t.Errorf("Files while writing: %v, %v", paths, err)
	}
	a.Abort()
	if left := tree(t, root); len(left) != 0 {
		t.Errorf("files left after Abort: %v", left)
	}
}

func TestArchiveOptionsRefused(t *testing.T) {
	for _, o := range []parquetio.ArchiveOptions{{Prefix: ".x"}, {Prefix: "_x"}, {Prefix: "a/b"}, {MaxFileRows: -1}, {MaxOpenFiles: -1}} {
		if _, err := parquetio.NewFeatureArchive(t.TempDir(), parquetio.FeatureOptions{Dim: 1}, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if _, err := parquetio.NewReadingArchive("", parquetio.ReadingOptions{}, parquetio.ArchiveOptions{}); err == nil {
		t.Error("no root: no error")
	}
}

func TestFiles(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{
		"date=2024-05-01/hour=13/part-a.parquet",
		"date=2024-05-01/hour=13/.part-b.parquet.tmp",
		"date=2024-05-01/hour=13/_SUCCESS",
		"date=2024-05-01/hour=13/notes.txt",
		"date=2024-05-01/hour=14/part-c.parquet",
		"_tmp/part-d.parquet",
		".hidden/part-e.parquet",
		"loose.parquet",
	} {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rel := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			r, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(r))
		}
		return out
	}
	for _, tt := range []struct {
		paths []string
		want  []string
	}{
		{[]string{root}, []string{"date=2024-05-01/hour=13/part-a.parquet", "date=2024-05-01/hour=14/part-c.parquet", "loose.parquet"}},
		{[]string{filepath.Join(root, "date=2024-05-01", "hour=14"), root}, []string{"date=2024-05-01/hour=13/part-a.parquet", "date=2024-05-01/hour=14/part-c.parquet", "loose.parquet"}},
		{[]string{filepath.Join(root, "date=*", "hour=13")}, []string{"date=2024-05-01/hour=13/part-a.parquet"}},
		{[]string{filepath.Join(root, "*", "*", "*.parquet")}, []string{"date=2024-05-01/hour=13/part-a.parquet", "date=2024-05-01/hour=14/part-c.parquet"}},
		{[]string{filepath.Join(root, "date=2024-05-01", "hour=13", "*")}, []string{"date=2024-05-01/hour=13/notes.txt", "date=2024-05-01/hour=13/part-a.parquet"}},
		{[]string{filepath.Join(root, "*")}, []string{"date=2024-05-01/hour=13/part-a.parquet", "date=2024-05-01/hour=14/part-c.parquet", "loose.parquet"}},
		{[]string{filepath.Join(root, "date=2024-05-01", "hour=13", "notes.txt")}, []string{"date=2024-05-01/hour=13/notes.txt"}},
		{[]string{filepath.Join(root, "nothing-*")}, nil},
	} {
		got, err := parquetio.Files(tt.paths...)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rel(got), tt.want) {
			t.Errorf("Files(%v) = %v, want %v", rel(tt.paths), rel(got), tt.want)
		}
	}
	if _, err := parquetio.Files(filepath.Join(root, "missing")); err == nil {
		t.Error("a missing path: no error")
	}
}

// TestArchiveDailyPartitions: readings that producers spread over 1,440
// event hours in random order, as a test of file amplification, make one
// file per hour when partitioned by hour and one per day by day.
func TestArchiveDailyPartitions(t *testing.T) {
	const n, days = 3000, 60
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	rs := make([]records.Reading, n)
	for i := range rs {
		hour := (i * 7919) % (days * 24) // a permutation of the hours, then again
		rs[i] = records.Reading{
			Device: "d",
			Time:   start.Add(time.Duration(hour)*time.Hour + time.Duration(i)*time.Millisecond),
			Values: []records.Value{{Name: "x", Value: float64(i)}},
			Source: records.Source{Topic: "t", Offset: int64(i)},
		}
	}
	for _, tt := range []struct {
		daily bool
		files int
		dir   *regexp.Regexp
	}{
		{false, days * 24, partName},
		{true, days, regexp.MustCompile(`^date=\d{4}-\d\d-\d\d/part-[0-9a-f]{16}\.parquet$`)},
	} {
		root := t.TempDir()
		a, err := parquetio.NewReadingArchive(root, parquetio.ReadingOptions{}, parquetio.ArchiveOptions{Daily: tt.daily})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs { // one by one, as the pipeline writes them
			if err := a.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		files, err := a.Close()
		if err != nil {
			t.Fatal(err)
		}
		var rows int64
		for _, f := range files {
			rows += f.Rows
			rel, _ := filepath.Rel(root, f.Path)
			if !tt.dir.MatchString(filepath.ToSlash(rel)) {
				t.Errorf("daily %v: file %s is not in the layout", tt.daily, rel)
			}
			from, to, ok := parquetio.PartitionSpan(f.Path)
			if !ok || !from.Equal(f.Hour) || !to.Equal(f.End()) {
				t.Errorf("daily %v: %s spans %v–%v (%v), the File says %v–%v", tt.daily, rel, from, to, ok, f.Hour, f.End())
			}
		}
		if tt.daily {
			if len(files) != tt.files {
				t.Errorf("daily: %d files, want one per day, %d", len(files), tt.files)
			}
		} else if len(files) < tt.files {
			t.Errorf("hourly: %d files, want at least one per hour, %d", len(files), tt.files)
		}
		if rows != n {
			t.Errorf("daily %v: %d rows in the files, want %d", tt.daily, rows, n)
		}
	}
}

func TestPartitionSpan(t *testing.T) {
	for _, tt := range []struct {
		path     string
		from, to time.Time
	}{
		{"a/date=2024-05-01/hour=13/p.parquet", t0, t0.Add(time.Hour)},
		{"a/date=2024-05-01/p.parquet", t0.Truncate(24 * time.Hour), t0.Truncate(24*time.Hour).AddDate(0, 0, 1)},
		{"date=2024-02-29/p.parquet", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)},
	} {
		from, to, ok := parquetio.PartitionSpan(filepath.FromSlash(tt.path))
		if !ok || !from.Equal(tt.from) || !to.Equal(tt.to) {
			t.Errorf("PartitionSpan(%s) = %v, %v, %v; want %v, %v", tt.path, from, to, ok, tt.from, tt.to)
		}
	}
	for _, bad := range []string{"a/b/c.parquet", "date=2023-02-29/x.parquet", "date=2024-05-01/hour=+1/x.parquet", "date=2024-05-01/hour=-1/x.parquet", "hour=01/x.parquet", "date=2024-05-1/x.parquet"} {
		if from, _, ok := parquetio.PartitionSpan(filepath.FromSlash(bad)); ok {
			t.Errorf("PartitionSpan(%s) = %v, want false", bad, from)
		}
	}
}
