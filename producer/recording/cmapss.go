package recording

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/muonml/muon/records"
)

// cmapssNames are the value names of a C-MAPSS row, after unit and cycle:
// three operating settings and 21 sensors.
var cmapssNames = [...]string{
	"op1", "op2", "op3",
	"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
	"s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21",
}

// cmapssColumns is the number of columns of a row: unit, cycle, values.
const cmapssColumns = 2 + len(cmapssNames)

// cmapssUnit is one engine: one device.
type cmapssUnit struct {
	number int64
	device string
	line   int   // its first row
	last   int64 // its last cycle
	end    int64 // the cycle at which it fails: label = end − cycle
}

// cmapssRow is one operating cycle of one unit.
type cmapssRow struct {
	unit  int // index into cmapssSource.units
	cycle int64
	time  time.Time
	vals  [len(cmapssNames)]float64
}

type cmapssSource struct {
	binary bool
	path   string
	units  []cmapssUnit
	rows   []cmapssRow // in replay order
	next   int
	buf    []records.Value
	closed bool
}

// openCMAPSS reads a C-MAPSS file, and the RUL file Options.RUL names, if
// any.
func openCMAPSS(path string, opt Options) (*cmapssSource, error) {
	if err := opt.needClock(path, "C-MAPSS rows count cycles, not times"); err != nil {
		return nil, err
	}
	var rul []int64
	if opt.RUL != "" {
		f, err := os.Open(opt.RUL)
		if err != nil {
			return nil, fmt.Errorf("recording: remaining useful lives of %s: %w", path, err)
		}
		rul, err = readRUL(opt.RUL, f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	defer f.Close()
	return readCMAPSS(path, f, opt, rul)
}

// readRUL reads a RUL_FD001.txt-style file: line i holds the remaining
// useful life, in cycles, of unit i after its last row.
func readRUL(path string, r io.Reader) ([]int64, error) {
	var (
		rul   []int64
		blank int // first line of a run of empty lines
	)
	lr := newLineReader(r)
	for {
		raw, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("recording: %s: %w", path, err)
		}
		text := strings.TrimSpace(string(raw))
		if text == "" {
			if blank == 0 {
				blank = lr.n
			}
			continue
		}
		if blank != 0 {
			// Line numbers are unit numbers: a gap would shift them.
			return nil, fmt.Errorf("%w: %s:%d: empty line; line i holds the remaining useful life of unit i", ErrFormat, path, blank)
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: %s:%d: %.40q is not a remaining useful life (a whole number of cycles ≥ 0)", ErrFormat, path, lr.n, text)
		}
		rul = append(rul, n)
	}
	if len(rul) == 0 {
		return nil, fmt.Errorf("%w: %s: no remaining useful lives; want one whole number a line, line i for unit i", ErrFormat, path)
	}
	return rul, nil
}

// readCMAPSS parses a whole C-MAPSS file; rul, when not nil, holds the
// remaining useful life of unit i+1 after its last row at index i.
func readCMAPSS(path string, r io.Reader, opt Options, rul []int64) (*cmapssSource, error) {
	prefix := opt.Device
	if prefix == "" {
		prefix = fileStem(path)
	}
	if !utf8.ValidString(prefix) {
		return nil, fmt.Errorf("%w: %s: the device name %q is not valid UTF-8; set Options.Device", ErrOptions, path, prefix)
	}
	s := &cmapssSource{path: path, binary: opt.Binary}
	index := make(map[int64]int) // unit number → s.units
	lr := newLineReader(r)
	errorf := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s:%d: %s", ErrFormat, path, lr.n, fmt.Sprintf(format, args...))
	}
	var fields []string
	for {
		raw, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("recording: %s: %w", path, err)
		}
		fields = appendFields(fields[:0], string(raw))
		if len(fields) == 0 {
			continue
		}
		if len(fields) != cmapssColumns {
			return nil, errorf("%d columns, want %d: unit, cycle, op1–op3 and s1–s21 separated by spaces", len(fields), cmapssColumns)
		}
		var row cmapssRow
		number, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || number < 1 {
			return nil, errorf("column \"unit\": %.40q is not a unit number (a whole number ≥ 1)", fields[0])
		}
		if row.cycle, err = strconv.ParseInt(fields[1], 10, 64); err != nil || row.cycle < 1 {
			return nil, errorf("column \"cycle\": %.40q is not a cycle number (a whole number ≥ 1)", fields[1])
		}
		for i, f := range fields[2:] {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, errorf("column %q: %.40q is not a number", cmapssNames[i], f)
			}
			row.vals[i] = v
		}
		u, seen := index[number]
		if !seen {
			u = len(s.units)
			index[number] = u
			s.units = append(s.units, cmapssUnit{
				number: number,
				device: prefix + "/" + strconv.FormatInt(number, 10),
				line:   lr.n,
			})
		} else if last := s.units[u].last; row.cycle <= last {
			return nil, errorf("unit %d: cycle %d after cycle %d; the cycles of a unit must increase", number, row.cycle, last)
		}
		var ok bool
		if row.time, ok = tick(opt.Start, row.cycle-1, opt.Period); !ok {
			return nil, errorf("unit %d: cycle %d is beyond the year 9999", number, row.cycle)
		}
		row.unit = u
		s.units[u].last = row.cycle
		s.rows = append(s.rows, row)
	}
	if len(s.rows) == 0 {
		return nil, fmt.Errorf("%w: %s: no rows; want unit, cycle, op1–op3 and s1–s21 separated by spaces", ErrFormat, path)
	}
	for i := range s.units {
		u := &s.units[i]
		u.end = u.last
		if rul == nil {
			continue
		}
		if u.number > int64(len(rul)) {
			return nil, fmt.Errorf("%w: %s:%d: unit %d has no remaining useful life in %s, which has %d lines", ErrFormat, path, u.line, u.number, opt.RUL, len(rul))
		}
		life := rul[u.number-1]
		if life > math.MaxInt64-u.last {
			return nil, fmt.Errorf("%w: %s:%d: remaining useful life %d of unit %d is too large", ErrFormat, opt.RUL, u.number, life, u.number)
		}
		u.end += life
	}
	// Event-time order, units in file order at each cycle, as a fleet of
	// engines streams and as .ts cases are interleaved: unit after unit
	// would send each unit's time back to Start, behind the watermark.
	slices.SortFunc(s.rows, func(a, b cmapssRow) int {
		return cmp.Or(cmp.Compare(a.cycle, b.cycle), cmp.Compare(a.unit, b.unit))
	})
	return s, nil
}

// appendFields appends the fields of line separated by spaces and tabs, as
// strings.Fields does, without allocating a slice per line.
func appendFields(dst []string, line string) []string {
	start := -1
	for i := 0; i < len(line); i++ {
		if c := line[i]; c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' {
			if start >= 0 {
				dst = append(dst, line[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, line[start:])
	}
	return dst
}

func (s *cmapssSource) Next() (Message, error) {
	if s.closed {
		return Message{}, ErrClosed
	}
	if s.next >= len(s.rows) {
		return Message{}, io.EOF
	}
	row := &s.rows[s.next]
	s.next++
	u := &s.units[row.unit]
	vals := s.buf[:0]
	for i, v := range row.vals {
		vals = append(vals, records.Value{Name: cmapssNames[i], Value: v})
	}
	s.buf = vals
	m, err := encode(s.binary, records.Reading{
		Device: u.device,
		Time:   row.time,
		Values: vals,
		Label:  strconv.FormatInt(u.end-row.cycle, 10),
	})
	if err != nil {
		return Message{}, fmt.Errorf("%w: %s: unit %d, cycle %d: %v", ErrFormat, s.path, u.number, row.cycle, err)
	}
	return m, nil
}

func (s *cmapssSource) Close() error {
	s.closed = true
	s.rows, s.units = nil, nil
	return nil
}
