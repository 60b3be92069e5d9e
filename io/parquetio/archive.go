package parquetio

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/records"
)

// Defaults ArchiveOptions override.
const (
	// DefaultPrefix starts the names of archive files.
	DefaultPrefix = "part"
	// DefaultMaxFileRows is the most rows in one archive file.
	DefaultMaxFileRows = 1 << 20
	// DefaultMaxOpenFiles is the most archive files an archive writer keeps
	// open at once: rows spread over up to this many partitions in one
	// bundle make one file per partition.
	DefaultMaxOpenFiles = 64
)

// Ext ends the name of every archive file.
const Ext = ".parquet"

// ArchiveOptions configures an archive writer.
type ArchiveOptions struct {
	// Prefix starts every file name, <Prefix>-<16 hex digits>.parquet.
	// Default DefaultPrefix. It may not start with "." or "_" (readers skip
	// such names) nor hold a path separator.
	Prefix string
	// MaxFileRows is the most rows in one file: an hour with more rows gets
	// several files. Default DefaultMaxFileRows.
	MaxFileRows int
	// MaxOpenFiles is the most files open at once, one per partition:
	// rows of one partition more finish the file least recently written to.
	// Default DefaultMaxOpenFiles.
	MaxOpenFiles int
	// Daily partitions rows by the UTC day of their event time,
	// date=YYYY-MM-DD, instead of the hour, date=YYYY-MM-DD/hour=HH: for
	// sources whose readings are sparse in time, where an hour holds few
	// rows and hourly partitions would make many small files.
	Daily bool
}

func (o *ArchiveOptions) check() error {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.MaxFileRows == 0 {
		o.MaxFileRows = DefaultMaxFileRows
	}
	if o.MaxOpenFiles == 0 {
		o.MaxOpenFiles = DefaultMaxOpenFiles
	}
	if strings.ContainsAny(o.Prefix, `/\`) || o.Prefix[0] == '.' || o.Prefix[0] == '_' {
		return fmt.Errorf("parquetio: file prefix %q may not start with . or _ nor hold a path separator", o.Prefix)
	}
	if o.MaxFileRows < 0 || o.MaxOpenFiles < 0 {
		return fmt.Errorf("parquetio: MaxFileRows %d and MaxOpenFiles %d must be ≥ 0", o.MaxFileRows, o.MaxOpenFiles)
	}
	return nil
}

// File is an archive file written and in place.
type File struct {
	// Path is where the file is: <root>/date=YYYY-MM-DD/hour=HH/<name>.parquet,
	// or <root>/date=YYYY-MM-DD/<name>.parquet for daily partitions.
	Path string
	// Hour is the start of the partition (hour or day) of every row of the
	// file, in UTC.
	Hour time.Time
	// Daily reports a daily partition.
	Daily bool
	// Rows is the number of rows (features or readings) in the file.
	Rows int64
	// Bytes is the file's size.
	Bytes int64
}

// End is the end of the file's partition: Hour plus an hour or a day.
func (f File) End() time.Time {
	if f.Daily {
		return f.Hour.AddDate(0, 0, 1)
	}
	return f.Hour.Add(time.Hour)
}

// PartitionDir is the directory, relative to an archive's root, of the
// rows whose event time is t: date=YYYY-MM-DD/hour=HH, in UTC (Hive-style,
// as Spark, pyarrow.dataset and DuckDB read it).
func PartitionDir(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%s%chour=%02d", DayDir(t), filepath.Separator, t.Hour())
}

// DayDir is the directory of daily partitions, relative to an archive's
// root, of the rows whose event time is t: date=YYYY-MM-DD, in UTC.
func DayDir(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("date=%04d-%02d-%02d", t.Year(), int(t.Month()), t.Day())
}

// partitionDir is the directory of the partition that starts at t.
func partitionDir(t time.Time, daily bool) string {
	if daily {
		return DayDir(t)
	}
	return PartitionDir(t)
}

// PartitionHour returns the partition hour of a file from its two parent
// directories, date=YYYY-MM-DD and hour=HH, and false if they are not that.
func PartitionHour(path string) (time.Time, bool) {
	start, end, ok := PartitionSpan(path)
	if !ok || end.Sub(start) != time.Hour {
		return time.Time{}, false
	}
	return start, true
}

// PartitionSpan returns the event times [start, end) of a file's partition
// from its parent directories: date=YYYY-MM-DD/hour=HH (an hour) or
// date=YYYY-MM-DD (a day), and false if they are neither.
func PartitionSpan(path string) (start, end time.Time, ok bool) {
	dir := filepath.Dir(path)
	if day, ok := parseDay(filepath.Base(dir)); ok {
		return day, day.AddDate(0, 0, 1), true
	}
	hs, ok := strings.CutPrefix(filepath.Base(dir), "hour=")
	day, ok2 := parseDay(filepath.Base(filepath.Dir(dir)))
	if !ok || !ok2 || len(hs) != 2 {
		return time.Time{}, time.Time{}, false
	}
	h, err := strconv.Atoi(hs)
	if err != nil || h < 0 || h > 23 || hs[0] == '+' || hs[0] == '-' {
		return time.Time{}, time.Time{}, false
	}
	start = day.Add(time.Duration(h) * time.Hour)
	return start, start.Add(time.Hour), true
}

// parseDay parses date=YYYY-MM-DD.
func parseDay(name string) (time.Time, bool) {
	ds, ok := strings.CutPrefix(name, "date=")
	if !ok || len(ds) < 10 || ds[len(ds)-6] != '-' || ds[len(ds)-3] != '-' {
		return time.Time{}, false
	}
	y, err1 := strconv.Atoi(ds[:len(ds)-6])
	m, err2 := strconv.Atoi(ds[len(ds)-5 : len(ds)-3])
	d, err3 := strconv.Atoi(ds[len(ds)-2:])
	if err := errors.Join(err1, err2, err3); err != nil {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if DayDir(t) != name {
		return time.Time{}, false // 2024-02-30, 2024-5-1, …
	}
	return t, true
}

// hidden reports whether readers skip a file or directory of this name:
// temporary files start with ".", and "_" marks metadata, as for Spark and
// pyarrow.
func hidden(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// Files lists the archive files that paths name, sorted and without
// repeats. A path may be a file (taken as is), a directory (every *.parquet
// under it, skipping names that start with "." or "_" such as the
// temporary files of writers still at work), or a glob pattern of
// filepath.Match whose matches are taken likewise, except the matches
// whose names start with "." or "_". A path that does not exist is an
// error; a pattern that matches nothing is not.
func Files(paths ...string) ([]string, error) {
	var out []string
	add := func(p string) error {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("parquetio: %w", err)
		}
		if !st.IsDir() {
			out = append(out, p)
			return nil
		}
		return filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("parquetio: listing %s: %w", p, err)
			}
			if path != p && hidden(d.Name()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() && strings.HasSuffix(d.Name(), Ext) {
				out = append(out, path)
			}
			return nil
		})
	}
	for _, p := range paths {
		if !strings.ContainsAny(p, `*?[`) {
			if err := add(p); err != nil {
				return nil, err
			}
			continue
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("parquetio: pattern %q: %w", p, err)
		}
		for _, m := range matches {
			if hidden(filepath.Base(m)) {
				continue
			}
			if err := add(m); err != nil {
				return nil, err
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// hourOfMilli is the hour (hours since the Unix epoch) of a time in Unix
// milliseconds.
func hourOfMilli(ms int64) int64 {
	h := ms / 3_600_000
	if ms%3_600_000 < 0 {
		h--
	}
	return h
}

// key is the partition of a time in Unix milliseconds: the first hour
// (hours since the Unix epoch) of its hour or, for daily partitions, of its
// UTC day.
func (a *archive[W]) key(ms int64) int64 {
	h := hourOfMilli(ms)
	if a.o.Daily {
		h -= ((h % 24) + 24) % 24
	}
	return h
}

// fileWriter is what an archive needs of a file format's writer.
type fileWriter interface {
	SetMetadata(key, value string)
	Close() error
}

// part is one archive file being written, under a temporary name.
type part[W fileWriter] struct {
	key  int64 // the partition's first hour since the Unix epoch
	hour time.Time
	dir  string
	tmp  *os.File
	buf  *bufio.Writer
	w    W
	// sum hashes what identifies the rows (ids, keys, times): it names the
	// file, so that the same rows make the same name and a retried write
	// replaces a file instead of adding one.
	sum  hash.Hash
	rows int64
	used uint64
}

// archive writes rows into hour or day partitions under root: the part of
// FeatureArchive and ReadingArchive that does not depend on the format.
type archive[W fileWriter] struct {
	root   string
	format string
	o      ArchiveOptions
	open   map[int64]*part[W]
	done   []File
	clock  uint64
	newW   func(io.Writer) (W, error)
	num    [8]byte
}

func newArchive[W fileWriter](root, format string, o ArchiveOptions, newW func(io.Writer) (W, error)) (*archive[W], error) {
	if root == "" {
		return nil, fmt.Errorf("parquetio: no archive root")
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	return &archive[W]{root: root, format: format, o: o, open: map[int64]*part[W]{}, newW: newW}, nil
}

// part returns the open file of a partition, opening one if needed.
func (a *archive[W]) part(hour int64) (*part[W], error) {
	a.clock++
	if p, ok := a.open[hour]; ok {
		p.used = a.clock
		return p, nil
	}
	if len(a.open) >= a.o.MaxOpenFiles {
		var lru *part[W]
		for _, p := range a.open {
			if lru == nil || p.used < lru.used {
				lru = p
			}
		}
		if err := a.finish(lru); err != nil {
			return nil, err
		}
	}
	t := time.Unix(hour*3600, 0).UTC()
	dir := filepath.Join(a.root, partitionDir(t, a.o.Daily))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("parquetio: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+a.o.Prefix+"-*"+Ext+".tmp")
	if err != nil {
		return nil, fmt.Errorf("parquetio: %w", err)
	}
	p := &part[W]{key: hour, hour: t, dir: dir, tmp: tmp, buf: bufio.NewWriterSize(tmp, 256<<10), sum: sha256.New(), used: a.clock}
	if p.w, err = a.newW(p.buf); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	p.sum.Write([]byte(a.format))
	p.sum.Write([]byte(partitionDir(t, a.o.Daily)))
	a.open[hour] = p
	return p, nil
}

// room is how many more rows p may take.
func (a *archive[W]) room(p *part[W]) int64 { return int64(a.o.MaxFileRows) - p.rows }

// wrote counts rows written to p and finishes it when it is full.
func (a *archive[W]) wrote(p *part[W], n int64) error {
	p.rows += n
	if a.room(p) <= 0 {
		return a.finish(p)
	}
	return nil
}

// hashString and hashInt add a length-prefixed string or an int to a
// file's name hash.
func (a *archive[W]) hashString(p *part[W], s string) {
	a.hashInt(p, int64(len(s)))
	io.WriteString(p.sum, s)
}

func (a *archive[W]) hashInt(p *part[W], v int64) {
	binary.LittleEndian.PutUint64(a.num[:], uint64(v))
	p.sum.Write(a.num[:])
}

// finish closes p's file and renames it to its final name.
func (a *archive[W]) finish(p *part[W]) error {
	delete(a.open, p.key)
	err := a.close(p)
	if err != nil {
		os.Remove(p.tmp.Name())
		return err
	}
	return nil
}

func (a *archive[W]) close(p *part[W]) error {
	p.w.SetMetadata(MetaPartition, filepath.ToSlash(partitionDir(p.hour, a.o.Daily)))
	if err := p.w.Close(); err != nil {
		p.tmp.Close()
		return err
	}
	if err := p.buf.Flush(); err != nil {
		p.tmp.Close()
		return fmt.Errorf("parquetio: writing %s: %w", p.tmp.Name(), err)
	}
	// The data reaches the disk before the rename makes the file visible.
	if err := p.tmp.Sync(); err != nil {
		p.tmp.Close()
		return fmt.Errorf("parquetio: writing %s: %w", p.tmp.Name(), err)
	}
	st, err := p.tmp.Stat()
	if err != nil {
		p.tmp.Close()
		return fmt.Errorf("parquetio: %w", err)
	}
	if err := p.tmp.Close(); err != nil {
		return fmt.Errorf("parquetio: writing %s: %w", p.tmp.Name(), err)
	}
	a.hashInt(p, p.rows)
	name := filepath.Join(p.dir, a.o.Prefix+"-"+hex.EncodeToString(p.sum.Sum(nil)[:8])+Ext)
	if err := os.Rename(p.tmp.Name(), name); err != nil {
		return fmt.Errorf("parquetio: %w", err)
	}
	if d, err := os.Open(p.dir); err == nil {
		d.Sync() // the rename itself; best effort, not every system syncs directories
		d.Close()
	}
	a.done = append(a.done, File{Path: name, Hour: p.hour, Daily: a.o.Daily, Rows: p.rows, Bytes: st.Size()})
	return nil
}

// closeAll finishes every open file and returns the files written since
// the last call.
func (a *archive[W]) closeAll() ([]File, error) {
	hours := make([]int64, 0, len(a.open))
	for h := range a.open {
		hours = append(hours, h)
	}
	slices.Sort(hours)
	for _, h := range hours {
		if err := a.finish(a.open[h]); err != nil {
			a.abort()
			return nil, err
		}
	}
	done := a.done
	a.done = nil
	return done, nil
}

// abort removes the temporary files of every open file.
func (a *archive[W]) abort() {
	for h, p := range a.open {
		p.tmp.Close()
		os.Remove(p.tmp.Name())
		delete(a.open, h)
	}
}

// FeatureArchive writes feature batches into a Hive-partitioned archive:
// <root>/date=YYYY-MM-DD/hour=HH/<prefix>-<hash>.parquet, one partition per
// UTC hour of the rows' event time (or <root>/date=YYYY-MM-DD/…, one per
// UTC day, with ArchiveOptions.Daily). Files are written under a temporary
// name starting with "." in the same directory and renamed when complete;
// the final name hashes the rows' ids, keys and times, so writing the same
// rows again replaces a file rather than adding a duplicate.
type FeatureArchive struct {
	a  *archive[*FeatureWriter]
	fo FeatureOptions
}

// NewFeatureArchive returns a writer of feature files under root. Close
// it to finish the files, or Abort it to remove them.
func NewFeatureArchive(root string, fo FeatureOptions, ao ArchiveOptions) (*FeatureArchive, error) {
	if err := fo.check(); err != nil {
		return nil, err
	}
	fa := &FeatureArchive{fo: fo}
	a, err := newArchive(root, FormatFeatures, ao, fa.newWriter)
	if err != nil {
		return nil, err
	}
	fa.a = a
	return fa, nil
}

func (fa *FeatureArchive) newWriter(w io.Writer) (*FeatureWriter, error) {
	return NewFeatureWriter(w, fa.fo)
}

// Write adds the rows of b, each to the partition of its event time.
func (fa *FeatureArchive) Write(b arrowio.Batch) error {
	if b.Record == nil || b.Record.NumRows() == 0 {
		return nil
	}
	rec := b.Record
	if err := checkRowSchema(rec.Schema(), fa.fo.Dim); err != nil {
		return err
	}
	key := rec.Column(arrowio.KeyIndex).(*array.String)
	ts := rec.Column(arrowio.TimeIndex).(*array.Timestamp).TimestampValues()
	id := rec.Column(arrowio.IDIndex).(*array.String)
	n := len(ts)
	for i := 0; i < n; {
		hour := fa.a.key(int64(ts[i]))
		j := i + 1
		for j < n && fa.a.key(int64(ts[j])) == hour {
			j++
		}
		for i < j {
			p, err := fa.a.part(hour)
			if err != nil {
				return err
			}
			k := i + int(min(int64(j-i), fa.a.room(p)))
			slice := rec.NewSlice(int64(i), int64(k))
			err = p.w.Write(arrowio.Batch{Record: slice})
			slice.Release()
			if err != nil {
				return err
			}
			for r := i; r < k; r++ {
				fa.a.hashString(p, id.Value(r))
				fa.a.hashString(p, key.Value(r))
				fa.a.hashInt(p, int64(ts[r]))
			}
			if err := fa.a.wrote(p, int64(k-i)); err != nil {
				return err
			}
			i = k
		}
	}
	return nil
}

// Close finishes every file and returns the files written, by hour.
func (fa *FeatureArchive) Close() ([]File, error) { return fa.a.closeAll() }

// Abort removes the files not yet finished. Files already returned by
// Close, or finished because they were full, stay.
func (fa *FeatureArchive) Abort() { fa.a.abort() }

// ReadingArchive writes decoded readings into a Hive-partitioned archive,
// laid out and named as FeatureArchive's; the name hashes the readings'
// source topic, partition and offset, device and time.
type ReadingArchive struct {
	a  *archive[*ReadingWriter]
	ro ReadingOptions
}

// NewReadingArchive returns a writer of readings files under root. Close
// it to finish the files, or Abort it to remove them.
func NewReadingArchive(root string, ro ReadingOptions, ao ArchiveOptions) (*ReadingArchive, error) {
	ra := &ReadingArchive{ro: ro}
	a, err := newArchive(root, FormatReadings, ao, ra.newWriter)
	if err != nil {
		return nil, err
	}
	ra.a = a
	return ra, nil
}

func (ra *ReadingArchive) newWriter(w io.Writer) (*ReadingWriter, error) {
	return NewReadingWriter(w, ra.ro)
}

// Write adds readings, each to the partition of its event time.
func (ra *ReadingArchive) Write(rs ...records.Reading) error {
	n := len(rs)
	for i := 0; i < n; {
		ms, _, err := splitTime(rs[i].Time)
		if err != nil {
			return fmt.Errorf("%w (reading %s)", err, rs[i].Source.ID())
		}
		hour := ra.a.key(ms)
		j := i + 1
		for j < n && ra.sameKey(rs[j].Time, hour) {
			j++
		}
		for i < j {
			p, err := ra.a.part(hour)
			if err != nil {
				return err
			}
			k := i + int(min(int64(j-i), ra.a.room(p)))
			if err := p.w.Write(rs[i:k]...); err != nil {
				return err
			}
			for r := i; r < k; r++ {
				s := &rs[r].Source
				ra.a.hashString(p, s.Topic)
				ra.a.hashInt(p, int64(s.Partition))
				ra.a.hashInt(p, s.Offset)
				ra.a.hashString(p, rs[r].Device)
				ra.a.hashInt(p, rs[r].Time.Unix())
				ra.a.hashInt(p, int64(rs[r].Time.Nanosecond()))
			}
			if err := ra.a.wrote(p, int64(k-i)); err != nil {
				return err
			}
			i = k
		}
	}
	return nil
}

// sameKey reports whether t falls in the partition.
func (ra *ReadingArchive) sameKey(t time.Time, key int64) bool {
	ms, _, err := splitTime(t)
	return err == nil && ra.a.key(ms) == key
}

// Close finishes every file and returns the files written, by hour.
func (ra *ReadingArchive) Close() ([]File, error) { return ra.a.closeAll() }

// Abort removes the files not yet finished. Files already returned by
// Close, or finished because they were full, stay.
func (ra *ReadingArchive) Abort() { ra.a.abort() }
