package recording

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/muonml/muon/records"
)

// tsHeader is what the @ lines of a .ts file declare.
type tsHeader struct {
	timestamps  bool
	univariate  bool
	dims        int // 0 until declared or seen in the first case
	classLabel  bool
	labels      []string // declared class labels; may be empty
	targetLabel bool
}

// Kinds of timestamps in a file with @timeStamps true.
const (
	stampUnknown = iota
	stampIndex   // integers: steps of Period from Start
	stampTime    // date-times
)

// tsCase is one line of data: one device.
type tsCase struct {
	index  int
	device string
	label  string
	vals   [][]float64   // per dimension; NaN marks a missing value
	times  [][]time.Time // per dimension, sorted; nil without timestamps
	maxLen int           // longest dimension
	pos    []int         // with timestamps: next index per dimension
	step   int           // without timestamps: next step
	next   time.Time     // time of the next reading
	done   bool
}

type tsSource struct {
	binary  bool
	path    string
	names   []string // dim0, dim1, ...
	stamped bool
	start   time.Time
	period  time.Duration
	cases   caseHeap
	buf     []records.Value
	closed  bool
	skips   Skips
	labels  []string // declared by @classLabel
}

// Labels are the class labels the header's @classLabel declares, in its
// order.
func (s *tsSource) Labels() []string { return s.labels }

// Skips counts the missing values (? or NaN) and the steps without any.
func (s *tsSource) Skips() Skips { return s.skips }

// tsParser holds the state of reading one file.
type tsParser struct {
	path     string
	opt      Options
	prefix   string
	h        tsHeader
	kind     int
	layout   int
	line     int
	cases    []*tsCase
	minTime  time.Time
	haveTime bool
}

func (p *tsParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s:%d: %s", ErrFormat, p.path, p.line, fmt.Sprintf(format, args...))
}

// readTS parses a whole .ts file and returns a source ready to emit.
func readTS(path string, r io.Reader, opt Options) (*tsSource, error) {
	p := &tsParser{path: path, opt: opt, prefix: opt.Device}
	if p.prefix == "" {
		p.prefix = fileStem(path)
	}
	if !utf8.ValidString(p.prefix) {
		return nil, fmt.Errorf("%w: %s: the device name %q is not valid UTF-8; set Options.Device", ErrOptions, path, p.prefix)
	}
	lr := newLineReader(r)
	inData := false
	for {
		raw, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("recording: %s: %w", path, err)
		}
		p.line = lr.n
		text := strings.TrimSpace(string(raw))
		if text == "" || text[0] == '#' {
			continue
		}
		if text[0] == '@' {
			if inData {
				return nil, p.errorf("header line %.40q after @data", text)
			}
			if inData, err = p.parseTag(text); err != nil {
				return nil, err
			}
			if inData && !p.h.timestamps {
				if err := opt.needClock(fmt.Sprintf("%s:%d", path, p.line), "the file has no timestamps (@timeStamps false)"); err != nil {
					return nil, err
				}
			}
			continue
		}
		if !inData {
			return nil, p.errorf("data before the @data line")
		}
		if err := p.parseCase(text); err != nil {
			return nil, err
		}
	}
	if !inData {
		return nil, fmt.Errorf("%w: %s: no @data line; is this a UEA/UCR .ts file?", ErrFormat, path)
	}
	if len(p.cases) == 0 {
		return nil, fmt.Errorf("%w: %s: no cases after @data", ErrFormat, path)
	}
	s := &tsSource{path: path, stamped: p.h.timestamps, start: opt.Start, period: opt.Period, binary: opt.Binary}
	if p.h.classLabel {
		s.labels = p.h.labels
	}
	for d := range p.h.dims {
		s.names = append(s.names, "dim"+strconv.Itoa(d))
	}
	if err := p.shift(); err != nil {
		return nil, err
	}
	for _, c := range p.cases {
		s.first(c)
		if !c.done {
			s.cases = append(s.cases, c)
		}
	}
	heap.Init(&s.cases)
	return s, nil
}

func (p *tsParser) parseTag(text string) (data bool, err error) {
	fields := strings.Fields(text)
	key, args := strings.ToLower(fields[0][1:]), fields[1:]
	boolArg := func() (bool, error) {
		if len(args) == 0 {
			return false, p.errorf("%s: want true or false", fields[0])
		}
		switch strings.ToLower(args[0]) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return false, p.errorf("%s %q: want true or false", fields[0], args[0])
	}
	intArg := func() (int, error) {
		if len(args) == 0 {
			return 0, p.errorf("%s: want a number", fields[0])
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 {
			return 0, p.errorf("%s %q: want a number", fields[0], args[0])
		}
		return n, nil
	}
	switch key {
	case "timestamps":
		p.h.timestamps, err = boolArg()
	case "univariate":
		p.h.univariate, err = boolArg()
	case "dimension", "dimensions":
		var n int
		if n, err = intArg(); err == nil && n == 0 {
			err = p.errorf("%s 0: want at least one dimension", fields[0])
		}
		p.h.dims = n
	case "missing", "equallength":
		_, err = boolArg()
	case "serieslength":
		_, err = intArg()
	case "classlabel":
		if p.h.classLabel, err = boolArg(); err == nil && p.h.classLabel {
			p.h.labels = args[1:]
		}
	case "targetlabel":
		p.h.targetLabel, err = boolArg()
	case "data":
		data = true
		switch {
		case p.h.classLabel && p.h.targetLabel:
			err = p.errorf("both @classLabel and @targetLabel are true")
		case p.h.univariate && p.h.dims > 1:
			err = p.errorf("@univariate true with @dimensions %d", p.h.dims)
		case p.h.univariate:
			p.h.dims = 1
		}
	default:
		// @problemName and tags of other writers carry nothing we need.
	}
	return data, err
}

// splitDims splits a data line at the colons outside parentheses (date-time
// timestamps contain colons).
func splitDims(line string) ([]string, bool) {
	var fields []string
	depth, start := 0, 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '(':
			depth++
		case ')':
			if depth--; depth < 0 {
				return nil, false
			}
		case ':':
			if depth == 0 {
				fields = append(fields, line[start:i])
				start = i + 1
			}
		}
	}
	return append(fields, line[start:]), depth == 0
}

func (p *tsParser) parseCase(text string) error {
	fields, ok := splitDims(text)
	if !ok {
		return p.errorf("unbalanced parentheses")
	}
	c := &tsCase{index: len(p.cases), device: fmt.Sprintf("%s-%04d", p.prefix, len(p.cases)+1)}
	if p.h.classLabel || p.h.targetLabel {
		if len(fields) < 2 {
			return p.errorf("want the dimensions, then ':' and the label")
		}
		c.label = strings.TrimSpace(fields[len(fields)-1])
		fields = fields[:len(fields)-1]
		switch {
		case c.label == "":
			return p.errorf("empty label after the last ':'")
		case !utf8.ValidString(c.label):
			return p.errorf("label %q is not valid UTF-8", c.label)
		case p.h.classLabel && len(p.h.labels) > 0 && !slices.Contains(p.h.labels, c.label):
			return p.errorf("class label %q is not one of those declared by @classLabel (%s)", c.label, strings.Join(p.h.labels, " "))
		case p.h.targetLabel:
			if f, err := strconv.ParseFloat(c.label, 64); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return p.errorf("regression target %q is not a number", c.label)
			}
		}
	}
	switch {
	case p.h.dims == 0:
		p.h.dims = len(fields)
	case len(fields) != p.h.dims:
		return p.errorf("case %d has %d dimensions, want %d", c.index+1, len(fields), p.h.dims)
	}
	c.vals = make([][]float64, len(fields))
	if p.h.timestamps {
		c.times = make([][]time.Time, len(fields))
	}
	for d, f := range fields {
		var err error
		if p.h.timestamps {
			c.times[d], c.vals[d], err = p.parseTuples(f, d)
		} else {
			c.vals[d], err = p.parseValues(f, d)
		}
		if err != nil {
			return err
		}
		c.maxLen = max(c.maxLen, len(c.vals[d]))
	}
	p.cases = append(p.cases, c)
	return nil
}

// parseValue parses one value; ? and NaN mark a missing one.
func parseValue(s string) (float64, bool) {
	if s == "?" || strings.EqualFold(s, "nan") {
		return math.NaN(), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func (p *tsParser) parseValues(f string, dim int) ([]float64, error) {
	f = strings.TrimSpace(f)
	if f == "" {
		return nil, nil
	}
	vals := make([]float64, 0, strings.Count(f, ",")+1)
	for i, s := range strings.Split(f, ",") {
		v, ok := parseValue(strings.TrimSpace(s))
		if !ok {
			return nil, p.errorf("case %d, dim%d, value %d: %.40q is not a number", len(p.cases)+1, dim, i+1, s)
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// parseTuples parses "(timestamp,value),(timestamp,value),...".
func (p *tsParser) parseTuples(f string, dim int) ([]time.Time, []float64, error) {
	var (
		times []time.Time
		vals  []float64
	)
	s := strings.TrimSpace(f)
	for n := 1; s != ""; n++ {
		if s[0] != '(' {
			return nil, nil, p.errorf("case %d, dim%d, tuple %d: want (timestamp,value), got %.20q", len(p.cases)+1, dim, n, s)
		}
		end := strings.IndexByte(s, ')')
		if end < 0 {
			return nil, nil, p.errorf("case %d, dim%d, tuple %d: no closing parenthesis", len(p.cases)+1, dim, n)
		}
		inner := s[1:end]
		comma := strings.LastIndexByte(inner, ',')
		if comma < 0 {
			return nil, nil, p.errorf("case %d, dim%d, tuple %d: want (timestamp,value), got %.40q", len(p.cases)+1, dim, n, s[:end+1])
		}
		v, ok := parseValue(strings.TrimSpace(inner[comma+1:]))
		if !ok {
			return nil, nil, p.errorf("case %d, dim%d, tuple %d: %.40q is not a number", len(p.cases)+1, dim, n, inner[comma+1:])
		}
		t, err := p.parseStamp(strings.TrimSpace(inner[:comma]))
		if errors.Is(err, ErrOptions) {
			return nil, nil, err
		}
		if err != nil {
			return nil, nil, p.errorf("case %d, dim%d, tuple %d: %v", len(p.cases)+1, dim, n, err)
		}
		times = append(times, t)
		vals = append(vals, v)
		s = strings.TrimSpace(s[end+1:])
		if s != "" {
			if s[0] != ',' {
				return nil, nil, p.errorf("case %d, dim%d, after tuple %d: want ',', got %.20q", len(p.cases)+1, dim, n, s)
			}
			s = strings.TrimSpace(s[1:])
		}
	}
	if !sort.SliceIsSorted(times, func(i, j int) bool { return times[i].Before(times[j]) }) {
		idx := make([]int, len(times))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(i, j int) bool { return times[idx[i]].Before(times[idx[j]]) })
		t2, v2 := make([]time.Time, len(times)), make([]float64, len(vals))
		for i, k := range idx {
			t2[i], v2[i] = times[k], vals[k]
		}
		times, vals = t2, v2
	}
	if len(times) > 0 && (!p.haveTime || times[0].Before(p.minTime)) {
		p.minTime, p.haveTime = times[0], true
	}
	return times, vals, nil
}

// parseStamp parses a timestamp: an integer number of Periods from Start,
// or a date-time. A file must use one kind throughout.
func (p *tsParser) parseStamp(s string) (time.Time, error) {
	kind := stampTime
	var t time.Time
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		kind = stampIndex
		if err := p.opt.needClock(fmt.Sprintf("%s:%d", p.path, p.line), "the timestamps are step numbers"); err != nil {
			return t, err
		}
		var ok bool
		if t, ok = tick(p.opt.Start, n, p.opt.Period); !ok {
			return t, fmt.Errorf("step %d is beyond the year 9999", n)
		}
	} else {
		if t, err = parseTimeText(s, &p.layout); err != nil {
			return t, err
		}
		if t = t.UTC(); !inRange(t) {
			return t, fmt.Errorf("%q is outside the years 0000–9999", s)
		}
	}
	if p.kind != stampUnknown && p.kind != kind {
		return t, fmt.Errorf("%q: the file mixes step numbers and date-times", s)
	}
	p.kind = kind
	return t, nil
}

// shift moves date-time stamps so that the earliest equals Options.Start.
func (p *tsParser) shift() error {
	if p.kind != stampTime || p.opt.Start.IsZero() || !p.haveTime {
		return nil
	}
	d := p.opt.Start.Sub(p.minTime)
	for _, c := range p.cases {
		for _, times := range c.times {
			for i := range times {
				if times[i] = times[i].Add(d); !inRange(times[i]) {
					return fmt.Errorf("%w: %s: shifting the recording to start at %v takes case %d beyond the year 9999", ErrOptions, p.path, p.opt.Start, c.index+1)
				}
			}
		}
	}
	return nil
}

// first positions c before its first reading.
func (s *tsSource) first(c *tsCase) {
	if !s.stamped {
		c.done = c.maxLen == 0
		c.next = s.start
		return
	}
	c.pos = make([]int, len(c.times))
	s.advance(c)
}

// advance sets c.next to the earliest pending timestamp of c.
func (s *tsSource) advance(c *tsCase) {
	c.done = true
	for d, times := range c.times {
		if i := c.pos[d]; i < len(times) && (c.done || times[i].Before(c.next)) {
			c.next, c.done = times[i], false
		}
	}
}

// take appends the values of c's next reading and moves c past it.
func (s *tsSource) take(c *tsCase, vals []records.Value) []records.Value {
	if !s.stamped {
		for d, v := range c.vals {
			switch {
			case c.step >= len(v): // this dimension's series has ended
			case math.IsNaN(v[c.step]):
				s.skips.Missing++
			default:
				vals = append(vals, records.Value{Name: s.names[d], Value: v[c.step]})
			}
		}
		c.step++
		c.done = c.step >= c.maxLen
		c.next = s.start.Add(time.Duration(c.step) * s.period)
		return vals
	}
	for d, times := range c.times {
		if i := c.pos[d]; i < len(times) && times[i].Equal(c.next) {
			if v := c.vals[d][i]; !math.IsNaN(v) {
				vals = append(vals, records.Value{Name: s.names[d], Value: v})
			} else {
				s.skips.Missing++
			}
			c.pos[d]++
		}
	}
	s.advance(c)
	return vals
}

func (s *tsSource) Next() (Message, error) {
	if s.closed {
		return Message{}, ErrClosed
	}
	for len(s.cases) > 0 {
		c := s.cases[0]
		r := records.Reading{Device: c.device, Time: c.next, Label: c.label}
		r.Values = s.take(c, s.buf[:0])
		s.buf = r.Values
		if c.done {
			heap.Pop(&s.cases)
		} else {
			heap.Fix(&s.cases, 0)
		}
		if len(r.Values) == 0 {
			s.skips.Empty++
			continue
		}
		m, err := encode(s.binary, r)
		if err != nil {
			return Message{}, fmt.Errorf("%w: %s: case %d at %v: %v", ErrFormat, s.path, c.index+1, r.Time, err)
		}
		return m, nil
	}
	return Message{}, io.EOF
}

func (s *tsSource) Close() error {
	s.closed = true
	s.cases = nil
	return nil
}

// caseHeap orders cases by the time of their next reading, then by case
// number, so that simultaneous readings come in file order.
type caseHeap []*tsCase

func (h caseHeap) Len() int { return len(h) }
func (h caseHeap) Less(i, j int) bool {
	if !h[i].next.Equal(h[j].next) {
		return h[i].next.Before(h[j].next)
	}
	return h[i].index < h[j].index
}
func (h caseHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *caseHeap) Push(x any)   { *h = append(*h, x.(*tsCase)) }
func (h *caseHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
