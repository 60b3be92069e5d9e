package recording

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
)

// Errors returned by this package, always wrapped with the path (and line,
// where there is one); test for them with [errors.Is].
var (
	// ErrUnsupported means the path is neither a .ts, .csv or .jsonl file
	// nor a directory (nor a file of the format Options.Format names).
	ErrUnsupported = errors.New("recording: unsupported recording")
	// ErrFormat means the content of a file is malformed: a bad header, a
	// value that is not a number, an unknown class label, a file in an image
	// folder that is not an image.
	ErrFormat = errors.New("recording: malformed recording")
	// ErrOptions means Options are missing something this recording needs
	// (Start and Period for files without timestamps) or name a column the
	// file does not have.
	ErrOptions = errors.New("recording: bad options")
	// ErrClosed is returned by Next after Close.
	ErrClosed = errors.New("recording: source closed")
)

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Message is one Kafka record to produce. Key, Value and Headers are owned
// by the caller: a Source never reuses them.
type Message struct {
	Key, Value []byte
	Headers    []Header
	Time       time.Time // event time; also the record timestamp
}

// Options adjust how a recording is replayed. The zero value suits files
// that carry their own timestamps.
type Options struct {
	// Start is the event time of the first sample of a recording without
	// timestamps (a .ts file with @timeStamps false, a CSV file without a
	// time column, an image folder); there it is required, and the package
	// picks no default: callers usually pass the time the replay starts.
	// When the recording has timestamps and Start is set, all times are
	// shifted by the same amount so that the first one equals Start; when
	// Start is zero they are kept as recorded.
	Start time.Time
	// Period is the time between two samples of a recording without
	// timestamps (and the unit of integer timestamps in a .ts file).
	// Required there: no default is guessed, since only the caller knows the
	// sampling rate (10 Hz, Period 100ms, for BasicMotions).
	Period time.Duration
	// Device replaces the device name taken from the file: the file stem of
	// a .ts file (devices are then Device-0001, Device-0002, ...), a C-MAPSS
	// file (Device/1, Device/2, ...) or a CSV file without a device column,
	// or the base name of an image folder. For a CSV file with a device
	// column it becomes a prefix: Device-<cell>.
	Device string
	// TimeColumn, DeviceColumn and LabelColumn name CSV columns, matched
	// exactly first and then case-insensitively; empty means auto-detect
	// (see Open).
	TimeColumn, DeviceColumn, LabelColumn string
	// Exclude holds glob patterns (path/filepath.Match syntax) matched
	// against the base name of each file of an image folder; matching files
	// are skipped, e.g. "*.png" to skip the defect masks of a dataset.
	Exclude []string
	// Format is ts, csv or jsonl for a file whose extension does not say
	// (optdigits' .tra and .tes are CSV), or cmapss for a NASA C-MAPSS
	// turbofan file, which is never guessed from its .txt extension.
	// Default: from the extension.
	Format string
	// RUL names a file of remaining useful lives for a C-MAPSS file whose
	// units stop before they fail (test_FD001.txt: RUL_FD001.txt), one
	// whole number of cycles a line, line i for unit i. Only for Format
	// cmapss. Default: none, the units run to failure at their last cycle.
	RUL string
	// Binary encodes sensor readings in message's binary format instead
	// of JSON (message.AppendReadingBinary): smaller, and faster to decode.
	// Default false. JSONL captures and images are sent as they are.
	Binary bool
}

// Skips counts what a source left out of its messages, so that nothing is
// dropped without a count.
type Skips struct {
	// Missing counts values marked missing (empty, NA, NaN or ? cells)
	// left out of their readings.
	Missing int64
	// Empty counts rows, time steps and lines that produced no message
	// because they held no value.
	Empty int64
}

// Skipper is a Source that can leave values or rows out; Skips says how
// many so far.
type Skipper interface {
	Skips() Skips
}

// Filer is a Source made of several files (a folder of images); Files
// says how many.
type Filer interface {
	Files() int
}

// Labeler is a Source that knows its class labels when it is opened: a
// .ts file's @classLabel, an image folder's sub-folders.
type Labeler interface {
	Labels() []string
}

// Source returns the messages of one recording in the order to produce
// them.
type Source interface {
	// Next returns the next message, or io.EOF after the last one.
	Next() (Message, error)
	// Close releases the file handles; Next then returns ErrClosed.
	Close() error
}

// Open opens the recording at path, dispatching on its type:
//
//   - *.ts: UEA/UCR time-series file. Each case (line) becomes a device
//     named <stem>-0001, <stem>-0002, ...; each time step a reading with
//     one value per dimension, named dim0, dim1, ..., and the class label
//     (or the regression target, as written) as label. Missing values (?
//     or NaN) are left out of their reading, and a step without any value
//     produces no reading. Without @timeStamps, every case starts at Start
//     and advances by Period; with @timeStamps true the (timestamp,value)
//     tuples give the times: integer timestamps count Periods from Start,
//     date-times are used as they are (UTC unless they carry a zone).
//     Readings of all cases are returned in event-time order.
//   - *.csv: a header line, then one reading per row. The time column is
//     Options.TimeColumn or the first column named (ignoring case)
//     timestamp, time, ts, datetime or date; its cells are RFC 3339,
//     "2006-01-02 15:04:05" or "2006-01-02T15:04:05" (with optional
//     fraction, UTC), "2006-01-02", or a number: epoch seconds below 1e11,
//     epoch milliseconds otherwise. Without a time column, the n-th row of
//     each device is at Start + n×Period. The device column is
//     Options.DeviceColumn or the first named device, device_id, deviceid,
//     id, unit or sensor; without one the file stem is the device. The label
//     column is Options.LabelColumn or the first named label, class or
//     target. Every other column holds numbers; empty, NA, NaN and ? cells
//     are left out, and a row without any value produces no reading. Rows
//     are returned in file order. Quoted fields, CRLF line ends and a UTF-8
//     byte order mark are handled.
//   - a directory: every file whose name ends in .png, .jpg, .jpeg or .pgm
//     (any case), walked recursively in lexical order, skipping names that
//     start with a dot and names matching Options.Exclude. The value is the
//     file as it is; the headers are device (Options.Device or the
//     directory's base name), label (the top-level sub-folder holding the
//     file; none for files directly in the directory) and content-type. The
//     i-th image is at Start + i×Period.
//   - *.jsonl (or .ndjson): captured messages, one message value per line,
//     produced as they are, well-formed or not (to replay what devices sent,
//     or to exercise a dead-letter path). The key is the device a line names
//     when it parses as a reading, else the file stem or Options.Device; the
//     time is its ts, else Start + n×Period. Empty lines are skipped.
//   - with Options.Format cmapss: a NASA C-MAPSS turbofan file
//     (train_FD001.txt), rows of unit, cycle, op1, op2, op3, s1 … s21
//     separated by spaces. Each unit is a device, <stem>/<unit> (or
//     <Options.Device>/<unit>); each row a reading at Start + (cycle−1)×Period
//     with values op1 … s21 and, as label, the remaining useful life in
//     cycles: the unit's last cycle minus the row's, plus the unit's line
//     of Options.RUL when given. Readings of all units are returned in
//     event-time order, units in file order at each cycle. The file is read
//     whole when it is opened.
//
// Anything else fails with ErrUnsupported.
func Open(path string, opt Options) (Source, error) {
	if err := opt.validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrOptions, path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	if opt.Format == "cmapss" {
		// Never from the extension: C-MAPSS files are plain .txt.
		if fi.IsDir() {
			return nil, fmt.Errorf("%w: %s: format cmapss reads a file, not a folder", ErrUnsupported, path)
		}
		return openCMAPSS(path, opt)
	}
	if fi.IsDir() {
		return openImages(path, opt)
	}
	ext := strings.ToLower(filepath.Ext(path))
	if opt.Format != "" {
		ext = "." + opt.Format
	}
	switch ext {
	case ".ts":
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("recording: %w", err)
		}
		defer f.Close()
		return readTS(path, f, opt)
	case ".jsonl", ".ndjson":
		return openJSONL(path, opt)
	case ".csv":
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("recording: %w", err)
		}
		src, err := readCSV(path, f, opt)
		if err != nil {
			f.Close()
			return nil, err
		}
		src.file = f
		return src, nil
	default:
		return nil, fmt.Errorf("%w: %s: want a .ts, .csv or .jsonl file or a folder of images, or a format (ts, csv, jsonl or cmapss) for other files", ErrUnsupported, path)
	}
}

var (
	minTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

func (opt *Options) validate() error {
	switch opt.Format {
	case "", "ts", "csv", "jsonl", "cmapss":
	default:
		return fmt.Errorf("format %q: want ts, csv, jsonl or cmapss", opt.Format)
	}
	switch {
	case opt.RUL == "" || opt.Format == "cmapss":
	case opt.Format == "":
		return fmt.Errorf("remaining useful lives (RUL %s) need format cmapss, which is never taken from the extension", opt.RUL)
	default:
		return fmt.Errorf("remaining useful lives (RUL %s) need format cmapss, not %s", opt.RUL, opt.Format)
	}
	if opt.Period < 0 {
		return fmt.Errorf("period %v is negative", opt.Period)
	}
	if !opt.Start.IsZero() && (opt.Start.Before(minTime) || opt.Start.After(maxTime)) {
		return fmt.Errorf("start %v is outside the years 0000–9999", opt.Start)
	}
	for _, p := range opt.Exclude {
		if _, err := filepath.Match(p, ""); err != nil {
			return fmt.Errorf("exclude pattern %q: %v", p, err)
		}
	}
	return nil
}

// needClock checks the options a recording without timestamps needs.
func (opt *Options) needClock(path, why string) error {
	switch {
	case opt.Start.IsZero():
		return fmt.Errorf("%w: %s: %s, so Options.Start must be set (the event time of the first sample)", ErrOptions, path, why)
	case opt.Period <= 0:
		return fmt.Errorf("%w: %s: %s, so Options.Period must be set (the time between samples)", ErrOptions, path, why)
	}
	return nil
}

// tick returns start + n×period, or false if that overflows or leaves the
// years 0000–9999.
func tick(start time.Time, n int64, period time.Duration) (time.Time, bool) {
	if period > 0 && (n > math.MaxInt64/int64(period) || n < -math.MaxInt64/int64(period)) {
		return time.Time{}, false
	}
	t := start.Add(time.Duration(n) * period)
	return t, inRange(t)
}

func fileStem(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// encode builds the message of one reading, validated as the decode stage
// would: JSON, or message's binary format.
func encode(binary bool, r records.Reading) (Message, error) {
	var value []byte
	var err error
	if binary {
		value, err = message.AppendReadingBinary(nil, r)
	} else {
		value, err = message.EncodeReading(r)
	}
	if err != nil {
		return Message{}, err
	}
	return Message{Key: []byte(r.Device), Value: value, Time: r.Time}, nil
}

// parseTimeText parses the date-time forms of recordings. Times without a
// zone are UTC. last remembers which layout worked, to try it first next
// time.
func parseTimeText(s string, last *int) (time.Time, error) {
	if t, err := time.Parse(timeLayouts[*last], s); err == nil {
		return t, nil
	}
	for i, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			*last = i
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date-time (RFC 3339, 2006-01-02 15:04:05[.fff], 2006-01-02T15:04:05[.fff] or 2006-01-02)", s)
}

// time.Parse accepts a fractional second after the seconds even when the
// layout has none.
var timeLayouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02",
}

func inRange(t time.Time) bool {
	return !t.Before(minTime) && !t.After(maxTime)
}
