package recording

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/muonml/muon/records"
)

// Column names recognised when Options leave a role empty, in no particular
// priority: the first column (left to right) with one of them wins.
var (
	timeColumnNames   = []string{"timestamp", "time", "ts", "datetime", "date"}
	deviceColumnNames = []string{"device", "device_id", "deviceid", "id", "unit", "sensor"}
	labelColumnNames  = []string{"label", "class", "target"}
)

type csvSource struct {
	binary    bool
	path      string
	file      io.Closer // nil when the caller owns the reader
	r         *csv.Reader
	header    []string
	timeCol   int // -1: none
	devCol    int
	labelCol  int
	valueCols []int
	device    string // without a device column
	prefix    string // Options.Device, prefixed to device cells

	start   time.Time
	period  time.Duration
	steps   map[string]int64 // readings per device, without a time column
	shift   time.Duration    // added to recorded times
	shifted bool             // shift is known
	layout  int
	vals    []records.Value
	closed  bool
	skips   Skips
}

// Skips counts the missing cells and the rows without any value.
func (s *csvSource) Skips() Skips { return s.skips }

// readCSV reads the header of a CSV file and returns a source streaming its
// rows.
func readCSV(path string, r io.Reader, opt Options) (*csvSource, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if bom, _ := br.Peek(3); string(bom) == "\uFEFF" {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: %s: empty file, want a header line", ErrFormat, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, path, err)
	}
	s := &csvSource{
		binary:  opt.Binary,
		path:    path,
		r:       cr,
		header:  make([]string, len(header)),
		timeCol: -1, devCol: -1, labelCol: -1,
		prefix: opt.Device,
		start:  opt.Start,
		period: opt.Period,
	}
	seen := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.TrimSpace(h)
		if h == "" {
			h = "col" + strconv.Itoa(i)
		}
		if !utf8.ValidString(h) {
			return nil, fmt.Errorf("%w: %s:1: the name of column %d, %q, is not valid UTF-8", ErrFormat, path, i+1, h)
		}
		if j, dup := seen[h]; dup {
			return nil, fmt.Errorf("%w: %s:1: columns %d and %d are both named %q", ErrFormat, path, j+1, i+1, h)
		}
		seen[h] = i
		s.header[i] = h
	}
	cr.FieldsPerRecord = len(header)
	if s.timeCol, err = s.column("time", opt.TimeColumn, timeColumnNames); err != nil {
		return nil, err
	}
	if s.devCol, err = s.column("device", opt.DeviceColumn, deviceColumnNames); err != nil {
		return nil, err
	}
	if s.labelCol, err = s.column("label", opt.LabelColumn, labelColumnNames); err != nil {
		return nil, err
	}
	for i := range s.header {
		if i != s.timeCol && i != s.devCol && i != s.labelCol {
			s.valueCols = append(s.valueCols, i)
		}
	}
	if len(s.valueCols) == 0 {
		return nil, fmt.Errorf("%w: %s:1: no value columns in %q", ErrFormat, path, s.header)
	}
	if s.devCol < 0 {
		s.device = opt.Device
		if s.device == "" {
			s.device = fileStem(path)
		}
		if !utf8.ValidString(s.device) {
			return nil, fmt.Errorf("%w: %s: the device name %q is not valid UTF-8; set Options.Device", ErrOptions, path, s.device)
		}
	}
	if s.timeCol < 0 {
		if err := opt.needClock(path, "the file has no time column"); err != nil {
			return nil, err
		}
		s.steps = make(map[string]int64)
	} else if opt.Start.IsZero() {
		s.shifted = true
	}
	return s, nil
}

// column finds the column of a role: the named one, or the first whose name
// is one of auto, or -1.
func (s *csvSource) column(role, name string, auto []string) (int, error) {
	taken := func(i int) bool { return i == s.timeCol || i == s.devCol }
	if name != "" {
		i := slices.Index(s.header, name)
		if i < 0 {
			i = slices.IndexFunc(s.header, func(h string) bool { return strings.EqualFold(h, name) })
		}
		if i >= 0 && taken(i) {
			return -1, fmt.Errorf("%w: %s: column %q cannot be both the %s column and another one", ErrOptions, s.path, s.header[i], role)
		}
		if i >= 0 {
			return i, nil
		}
		return -1, fmt.Errorf("%w: %s: no %s column %q among %q", ErrOptions, s.path, role, name, s.header)
	}
	for i, h := range s.header {
		for _, a := range auto {
			if strings.EqualFold(h, a) && !taken(i) {
				return i, nil
			}
		}
	}
	return -1, nil
}

func (s *csvSource) errorf(col int, format string, args ...any) error {
	line, _ := s.r.FieldPos(col)
	return fmt.Errorf("%w: %s:%d: column %q: %s", ErrFormat, s.path, line, s.header[col], fmt.Sprintf(format, args...))
}

func (s *csvSource) Next() (Message, error) {
	if s.closed {
		return Message{}, ErrClosed
	}
	for {
		rec, err := s.r.Read()
		if err == io.EOF {
			return Message{}, io.EOF
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return Message{}, fmt.Errorf("%w: %s:%d: %v", ErrFormat, s.path, pe.Line, pe.Err)
			}
			return Message{}, fmt.Errorf("recording: %s: %w", s.path, err)
		}
		r := records.Reading{Device: s.device}
		if s.devCol >= 0 {
			r.Device = strings.TrimSpace(rec[s.devCol])
			if r.Device == "" {
				return Message{}, s.errorf(s.devCol, "empty device")
			}
			if s.prefix != "" {
				r.Device = s.prefix + "-" + r.Device
			}
		}
		if s.labelCol >= 0 {
			r.Label = strings.TrimSpace(rec[s.labelCol])
		}
		if r.Time, err = s.rowTime(rec, r.Device); err != nil {
			return Message{}, err
		}
		vals := s.vals[:0]
		for _, i := range s.valueCols {
			cell := strings.TrimSpace(rec[i])
			if cell == "" || cell == "?" || strings.EqualFold(cell, "na") || strings.EqualFold(cell, "nan") {
				s.skips.Missing++
				continue
			}
			f, err := strconv.ParseFloat(cell, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return Message{}, s.errorf(i, "%.40q is not a number", cell)
			}
			vals = append(vals, records.Value{Name: s.header[i], Value: f})
		}
		s.vals = vals
		if len(vals) == 0 {
			s.skips.Empty++
			continue
		}
		r.Values = vals
		m, err := encode(s.binary, r)
		if err != nil {
			line, _ := s.r.FieldPos(0)
			return Message{}, fmt.Errorf("%w: %s:%d: %v", ErrFormat, s.path, line, err)
		}
		return m, nil
	}
}

// rowTime returns the event time of a row.
func (s *csvSource) rowTime(rec []string, device string) (time.Time, error) {
	if s.timeCol < 0 {
		n := s.steps[device]
		s.steps[device] = n + 1
		t, ok := tick(s.start, n, s.period)
		if !ok {
			line, _ := s.r.FieldPos(0)
			return t, fmt.Errorf("%w: %s:%d: row %d of device %q is beyond the year 9999", ErrFormat, s.path, line, n+1, device)
		}
		return t, nil
	}
	cell := strings.TrimSpace(rec[s.timeCol])
	t, err := parseCSVTime(cell, &s.layout)
	if err != nil {
		return t, s.errorf(s.timeCol, "%v", err)
	}
	if !s.shifted {
		s.shift, s.shifted = s.start.Sub(t), true
	}
	if t = t.Add(s.shift).UTC(); !inRange(t) {
		return t, s.errorf(s.timeCol, "%.40q is outside the years 0000–9999", cell)
	}
	return t, nil
}

// parseCSVTime parses a date-time or an epoch number: seconds below 1e11
// (until the year 5138), milliseconds above.
func parseCSVTime(cell string, layout *int) (time.Time, error) {
	if cell == "" {
		return time.Time{}, errors.New("empty time")
	}
	if looksNumeric(cell) {
		if n, err := strconv.ParseInt(cell, 10, 64); err == nil {
			if n > -1e11 && n < 1e11 {
				return time.Unix(n, 0).UTC(), nil
			}
			if n > -1e15 && n < 1e15 {
				return time.UnixMilli(n).UTC(), nil
			}
			return time.Time{}, fmt.Errorf("epoch time %s is out of range", cell)
		}
		if f, err := strconv.ParseFloat(cell, 64); err == nil {
			sec := f
			if math.Abs(f) >= 1e11 {
				sec = f / 1e3
			}
			if !(math.Abs(sec) < 1e12) { // also NaN and ±Inf
				return time.Time{}, fmt.Errorf("epoch time %s is out of range", cell)
			}
			whole := math.Floor(sec)
			return time.Unix(int64(whole), int64(math.Round((sec-whole)*1e9))).UTC(), nil
		}
	}
	t, err := parseTimeText(cell, layout)
	return t.UTC(), err
}

// looksNumeric reports whether s could be a decimal number, so that dates
// such as 2024-05-01 skip the number parsers (and their error allocations).
func looksNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9', c == '.', c == 'e', c == 'E':
		case c == '-' || c == '+':
			if i > 0 && s[i-1] != 'e' && s[i-1] != 'E' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (s *csvSource) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.file != nil {
		return s.file.Close()
	}
	return nil
}
