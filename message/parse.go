package message

import (
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/muonml/muon/records"
)

// maxDepth bounds the nesting of ignored fields; it is the limit
// encoding/json uses, so both accept the same documents.
const maxDepth = 10000

// Bounds of ts, so that every accepted time can be written back as RFC 3339.
var (
	minTime   = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime   = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	minMillis = minTime.UnixMilli()
	maxMillis = maxTime.UnixMilli()
)

// ParseReading decodes the reading in data into dst: JSON, or the binary
// format (AppendReadingBinary) when data starts with BinaryMagic. fallback is the
// event time used when the message has no ts (or ts is null), normally the
// Kafka record timestamp. Times from ts are returned in UTC.
//
// ParseReading reuses the capacity of dst.Values, and reuses the strings in
// dst (device, label, value names) when the message repeats them, so that a
// decode loop that keeps one records.Reading per worker allocates nothing for the
// usual stream of same-shaped messages. The strings returned never alias
// data. On error, *dst is left in an unspecified state.
//
// The input is treated as hostile: see the package documentation for the
// rules, and the Err* variables for what a failure wraps.
func ParseReading(data []byte, fallback time.Time, dst *records.Reading) error {
	if len(data) > MaxReadingBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxReadingBytes)
	}
	if len(data) > 0 && data[0] == BinaryMagic {
		return parseBinary(data, fallback, dst)
	}
	p := parser{data: data}
	p.skipSpace()
	if p.pos >= len(data) || data[p.pos] != '{' {
		return p.syntaxf(p.pos, "want a JSON object")
	}
	p.pos++

	var (
		device, label string
		hasDevice     bool
		hasTS         bool
		hasValues     bool
		hasLabel      bool
		t             = fallback
		vals          = dst.Values[:0]
		keyBuf        [40]byte
	)
	p.skipSpace()
	if p.pos < len(data) && data[p.pos] == '}' {
		p.pos++
	} else {
		for {
			p.skipSpace()
			keyPos := p.pos
			key, err := p.scanString()
			if err != nil {
				return err
			}
			if err := p.colon(); err != nil {
				return err
			}
			p.skipSpace()
			var field []byte
			if key.escaped {
				if key.end-key.start <= 6*len("values") {
					field = unescape(keyBuf[:0], p.data[key.start:key.end])
				}
			} else {
				field = p.data[key.start:key.end]
			}
			switch string(field) {
			case "device":
				if hasDevice {
					return p.duplicateField(keyPos, "device")
				}
				hasDevice = true
				if device, err = p.parseDevice(dst.Device); err != nil {
					return err
				}
			case "ts":
				if hasTS {
					return p.duplicateField(keyPos, "ts")
				}
				hasTS = true
				if t, err = p.parseTime(fallback); err != nil {
					return err
				}
			case "values":
				if hasValues {
					return p.duplicateField(keyPos, "values")
				}
				hasValues = true
				if vals, err = p.parseValues(vals); err != nil {
					return err
				}
			case "label":
				if hasLabel {
					return p.duplicateField(keyPos, "label")
				}
				hasLabel = true
				if label, err = p.parseLabel(dst.Label); err != nil {
					return err
				}
			default:
				if err := p.skipValue(1); err != nil {
					return err
				}
			}
			p.skipSpace()
			if p.pos >= len(data) {
				return p.syntaxf(p.pos, "unexpected end of message, want , or }")
			}
			c := data[p.pos]
			p.pos++
			if c == '}' {
				break
			}
			if c != ',' {
				return p.syntaxf(p.pos-1, "unexpected %s, want , or }", describeByte(c))
			}
		}
	}
	p.skipSpace()
	if p.pos != len(data) {
		return p.syntaxf(p.pos, "unexpected data after the object")
	}
	if device == "" {
		if hasDevice {
			return fmt.Errorf("%w: device is empty or null", ErrMissingDevice)
		}
		return fmt.Errorf("%w: no device field", ErrMissingDevice)
	}
	if !hasValues {
		return fmt.Errorf("%w: no values field", ErrMissingValues)
	}
	dst.Device = device
	dst.Time = t
	dst.Values = vals
	dst.Label = label
	return nil
}

type parser struct {
	data []byte
	pos  int
}

// tables are the nameTables of parseValues, reused.
var tables = sync.Pool{New: func() any { return new(nameTable) }}

// span is a scanned JSON string, without its quotes.
type span struct {
	start, end int
	escaped    bool // contains a backslash escape
}

func (p *parser) syntaxf(at int, format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d", ErrSyntax, fmt.Sprintf(format, args...), at)
}

func (p *parser) duplicateField(at int, name string) error {
	return fmt.Errorf("%w: %q again at byte %d", ErrDuplicateField, name, at)
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) colon() error {
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != ':' {
		return p.syntaxf(p.pos, "want : after the field name")
	}
	p.pos++
	return nil
}

// scanString checks the JSON string at p.pos and moves past it.
func (p *parser) scanString() (span, error) {
	d := p.data
	i := p.pos
	if i >= len(d) || d[i] != '"' {
		if i >= len(d) {
			return span{}, p.syntaxf(i, "unexpected end of message, want a string")
		}
		return span{}, p.syntaxf(i, "unexpected %s, want a string", describeByte(d[i]))
	}
	i++
	s := span{start: i}
	for {
		for i < len(d) && d[i] >= 0x20 && d[i] < utf8.RuneSelf && d[i] != '"' && d[i] != '\\' {
			i++
		}
		if i >= len(d) {
			return span{}, p.syntaxf(p.pos, "unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			s.end = i
			p.pos = i + 1
			return s, nil
		case c == '\\':
			s.escaped = true
			if i+1 >= len(d) {
				return span{}, p.syntaxf(p.pos, "unterminated string")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || hex4(d[i+2:i+6]) < 0 {
					return span{}, p.syntaxf(i, `invalid \u escape`)
				}
				i += 6
			default:
				return span{}, p.syntaxf(i, "invalid escape %s", describeByte(d[i+1]))
			}
		case c < 0x20:
			return span{}, p.syntaxf(i, "control character %#02x in string", c)
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return span{}, p.syntaxf(i, "invalid UTF-8")
			}
			i += size
		}
	}
}

// text returns the decoded string s, reusing old when it is equal.
func (p *parser) text(s span, old string) string {
	raw := p.data[s.start:s.end]
	if !s.escaped {
		return reuse(old, raw)
	}
	var buf [64]byte
	return reuse(old, unescape(buf[:0], raw))
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescape appends the decoded form of raw, a string body already checked by
// scanString. Unpaired surrogates become U+FFFD, as in encoding/json.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+2:])
			i += 6
			if 0xD800 <= r && r < 0xE000 {
				if r < 0xDC00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2 := hex4(raw[i+2:]); 0xDC00 <= r2 && r2 < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
						i += 6
						dst = utf8.AppendRune(dst, r)
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // " \ /
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

// scanNumber checks the JSON number at p.pos and moves past it. It reports
// whether the number is an integer (no fraction, no exponent).
func (p *parser) scanNumber() (start, end int, integer bool, err error) {
	d := p.data
	i := p.pos
	start = i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return 0, 0, false, p.syntaxf(start, "invalid number")
	}
	integer = true
	if i < len(d) && d[i] == '.' {
		integer = false
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return 0, 0, false, p.syntaxf(start, "invalid number: no digit after the decimal point")
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		integer = false
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return 0, 0, false, p.syntaxf(start, "invalid number: no digit in the exponent")
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	p.pos = i
	return start, i, integer, nil
}

// smallInt converts a JSON integer of at most 15 digits (below 2^53, so
// exactly a float64) without strconv.ParseFloat, which costs more than the
// rest of a value's parse. Counts and pixel values often are such
// integers. ok is false for anything else.
func smallInt(num []byte, integer bool) (f float64, ok bool) {
	if !integer {
		return 0, false
	}
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	if len(num) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range num {
		n = n*10 + int64(c-'0')
	}
	f = float64(n)
	if neg {
		f = -f // -0 stays negative zero, as ParseFloat gives it
	}
	return f, true
}

// literal moves past the literal lit (true, false, null) at p.pos.
func (p *parser) literal(lit string) error {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return p.syntaxf(p.pos, "invalid literal, want %s", lit)
	}
	p.pos += len(lit)
	return nil
}

// kind names the JSON type starting at p.pos, for error messages.
func (p *parser) kind() string {
	if p.pos >= len(p.data) {
		return "nothing"
	}
	switch c := p.data[p.pos]; c {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return "a number"
		}
		return describeByte(c)
	}
}

func (p *parser) parseDevice(old string) (string, error) {
	if p.pos < len(p.data) && p.data[p.pos] == 'n' {
		if err := p.literal("null"); err != nil {
			return "", err
		}
		return "", nil
	}
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		return "", fmt.Errorf("%w: device is %s at byte %d, want a string", ErrFieldType, p.kind(), p.pos)
	}
	s, err := p.scanString()
	if err != nil {
		return "", err
	}
	return p.text(s, old), nil
}

func (p *parser) parseLabel(old string) (string, error) {
	if p.pos < len(p.data) && p.data[p.pos] == 'n' {
		return "", p.literal("null")
	}
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		return "", fmt.Errorf("%w: label is %s at byte %d, want a string or null", ErrFieldType, p.kind(), p.pos)
	}
	s, err := p.scanString()
	if err != nil {
		return "", err
	}
	return p.text(s, old), nil
}

func (p *parser) parseTime(fallback time.Time) (time.Time, error) {
	at := p.pos
	if at >= len(p.data) {
		return time.Time{}, p.syntaxf(at, "unexpected end of message, want a value")
	}
	switch c := p.data[at]; {
	case c == 'n':
		return fallback, p.literal("null")
	case c == '"':
		s, err := p.scanString()
		if err != nil {
			return time.Time{}, err
		}
		raw := p.data[s.start:s.end]
		var buf [64]byte
		if s.escaped {
			raw = unescape(buf[:0], raw)
		}
		var t time.Time
		if err := t.UnmarshalText(raw); err != nil {
			return time.Time{}, fmt.Errorf("%w: ts %s at byte %d is not RFC 3339 with a zone, e.g. 2024-05-01T12:00:00.000Z", ErrBadTimestamp, quoteForError(string(raw)), at)
		}
		t = t.UTC()
		if t.Before(minTime) || t.After(maxTime) {
			return time.Time{}, fmt.Errorf("%w: ts %s at byte %d is outside the years 0000–9999 in UTC", ErrBadTimestamp, quoteForError(string(raw)), at)
		}
		return t, nil
	case c == '-' || '0' <= c && c <= '9':
		start, end, integer, err := p.scanNumber()
		if err != nil {
			return time.Time{}, err
		}
		num := p.data[start:end]
		if !integer {
			return time.Time{}, fmt.Errorf("%w: ts %s at byte %d: epoch milliseconds must be an integer", ErrBadTimestamp, quoteForError(string(num)), at)
		}
		ms, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || ms < minMillis || ms > maxMillis {
			return time.Time{}, fmt.Errorf("%w: ts %s at byte %d: epoch milliseconds outside the years 0000–9999", ErrBadTimestamp, quoteForError(string(num)), at)
		}
		return time.UnixMilli(ms).UTC(), nil
	default:
		return time.Time{}, fmt.Errorf("%w: ts is %s at byte %d, want an RFC 3339 string or epoch milliseconds", ErrBadTimestamp, p.kind(), at)
	}
}

// parseValues decodes the values object into vals[:0], reusing the names
// already in vals' backing array when they repeat.
func (p *parser) parseValues(vals []records.Value) ([]records.Value, error) {
	vals = vals[:0]
	at := p.pos
	if at < len(p.data) && p.data[at] == 'n' {
		if err := p.literal("null"); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: values is null at byte %d", ErrMissingValues, at)
	}
	if at >= len(p.data) || p.data[at] != '{' {
		return nil, fmt.Errorf("%w: values is %s at byte %d, want an object", ErrFieldType, p.kind(), at)
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		return nil, fmt.Errorf("%w: values is empty at byte %d", ErrMissingValues, at)
	}
	// Repeated names: compared pairwise in short lists, then through a
	// table on the stack, then a map (see findDuplicate).
	var table *nameTable
	var seen map[string]int
	for {
		p.skipSpace()
		namePos := p.pos
		s, err := p.scanString()
		if err != nil {
			return nil, err
		}
		if s.start == s.end {
			return nil, fmt.Errorf("%w: at byte %d", ErrValueName, namePos)
		}
		if err := p.colon(); err != nil {
			return nil, err
		}
		p.skipSpace()
		var old string
		if n := len(vals); n < cap(vals) {
			old = vals[:n+1][n].Name
		}
		name := p.text(s, old)
		n := len(vals)
		switch {
		case n < 16:
			for i := range vals {
				if vals[i].Name == name {
					return nil, fmt.Errorf("%w: %s at byte %d", ErrDuplicateValue, quoteForError(name), namePos)
				}
			}
		case n < maxTableValues:
			if table == nil {
				table = tables.Get().(*nameTable)
				clear(table[:])
				defer tables.Put(table)
				for i := range vals {
					table.add(vals, i)
				}
			}
			probe := append(vals, records.Value{Name: name})
			if _, dup := table.add(probe, n); dup {
				return nil, fmt.Errorf("%w: %s at byte %d", ErrDuplicateValue, quoteForError(name), namePos)
			}
		default:
			if seen == nil {
				seen = make(map[string]int, 2*n)
				for i, v := range vals {
					seen[v.Name] = i
				}
			}
			if _, dup := seen[name]; dup {
				return nil, fmt.Errorf("%w: %s at byte %d", ErrDuplicateValue, quoteForError(name), namePos)
			}
			seen[name] = n
		}
		valuePos := p.pos
		if valuePos >= len(p.data) {
			return nil, p.syntaxf(valuePos, "unexpected end of message, want a number")
		}
		c := p.data[valuePos]
		if c != '-' && (c < '0' || c > '9') {
			return nil, fmt.Errorf("%w: value %s at byte %d is %s, want a number", ErrNonNumeric, quoteForError(name), valuePos, p.kind())
		}
		start, end, integer, err := p.scanNumber()
		if err != nil {
			return nil, err
		}
		f, ok := smallInt(p.data[start:end], integer)
		if !ok {
			f, err = strconv.ParseFloat(string(p.data[start:end]), 64)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: value %s at byte %d: %s is out of the float64 range", ErrNonNumeric, quoteForError(name), valuePos, quoteForError(string(p.data[start:end])))
		}
		vals = append(vals, records.Value{Name: name, Value: f})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.syntaxf(p.pos, "unexpected end of message in values, want , or }")
		}
		c = p.data[p.pos]
		p.pos++
		if c == '}' {
			return vals, nil
		}
		if c != ',' {
			return nil, p.syntaxf(p.pos-1, "unexpected %s in values, want , or }", describeByte(c))
		}
	}
}

// skipValue checks and moves past any JSON value; depth is the nesting
// depth of the container holding it.
func (p *parser) skipValue(depth int) error {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return p.syntaxf(p.pos, "unexpected end of message, want a value")
	}
	switch c := p.data[p.pos]; c {
	case '"':
		_, err := p.scanString()
		return err
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	case '{', '[':
		depth++
		if depth > maxDepth {
			return p.syntaxf(p.pos, "nesting deeper than %d", maxDepth)
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		p.pos++
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == end {
			p.pos++
			return nil
		}
		for {
			if c == '{' {
				p.skipSpace()
				if _, err := p.scanString(); err != nil {
					return err
				}
				if err := p.colon(); err != nil {
					return err
				}
			}
			if err := p.skipValue(depth); err != nil {
				return err
			}
			p.skipSpace()
			if p.pos >= len(p.data) {
				return p.syntaxf(p.pos, "unexpected end of message, want , or %c", end)
			}
			next := p.data[p.pos]
			p.pos++
			if next == end {
				return nil
			}
			if next != ',' {
				return p.syntaxf(p.pos-1, "unexpected %s, want , or %c", describeByte(next), end)
			}
		}
	default:
		if c == '-' || '0' <= c && c <= '9' {
			_, _, _, err := p.scanNumber()
			return err
		}
		return p.syntaxf(p.pos, "unexpected %s, want a value", describeByte(c))
	}
}

func describeByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte %#02x", c)
}
