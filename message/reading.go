package message

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/muonml/muon/internal/jsonstr"
	"github.com/muonml/muon/records"
)

// MaxReadingBytes is the largest encoded reading ParseReading accepts.
const MaxReadingBytes = 1 << 20

// ValidateReading reports whether r can be encoded as a reading that
// ParseReading accepts: a non-empty device, at least one value, non-empty unique names,
// finite values, valid UTF-8 strings and a time (if set) within the years
// 0000–9999 in UTC.
func ValidateReading(r *records.Reading) error {
	if r.Device == "" {
		return fmt.Errorf("%w: device is empty", ErrMissingDevice)
	}
	if !utf8.ValidString(r.Device) {
		return fmt.Errorf("%w: device %s is not valid UTF-8", ErrSyntax, quoteForError(r.Device))
	}
	if !utf8.ValidString(r.Label) {
		return fmt.Errorf("%w: label %s is not valid UTF-8", ErrSyntax, quoteForError(r.Label))
	}
	if !r.Time.IsZero() {
		if y := r.Time.UTC().Year(); y < 0 || y > 9999 {
			return fmt.Errorf("%w: year %d is outside 0000–9999", ErrBadTimestamp, y)
		}
	}
	if len(r.Values) == 0 {
		return fmt.Errorf("%w: no values", ErrMissingValues)
	}
	if i, j, ok := findDuplicate(r.Values); ok {
		return fmt.Errorf("%w: %s at positions %d and %d", ErrDuplicateValue, quoteForError(r.Values[i].Name), i, j)
	}
	for i, v := range r.Values {
		if v.Name == "" {
			return fmt.Errorf("%w: value at position %d", ErrValueName, i)
		}
		if !utf8.ValidString(v.Name) {
			return fmt.Errorf("%w: value name %s is not valid UTF-8", ErrSyntax, quoteForError(v.Name))
		}
		if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
			return fmt.Errorf("%w: value %s is %v, which JSON cannot represent", ErrNonNumeric, quoteForError(v.Name), v.Value)
		}
	}
	return nil
}

// EncodeReading returns the JSON encoding of r after checking it with
// [Reading.Validate]. Use it where r comes from outside the program: NaN and
// ±Inf, for example, have no JSON form and are refused with [ErrNonNumeric]
// here, whereas AppendReading would write null for them.
func EncodeReading(r records.Reading) ([]byte, error) {
	if err := ValidateReading(&r); err != nil {
		return nil, err
	}
	return AppendReading(make([]byte, 0, encodedSizeHint(&r)), r), nil
}

// AppendReading appends the JSON encoding of r to dst and returns the
// extended buffer. Fields come in the order device, ts, values, label; ts is
// RFC 3339 in UTC with milliseconds (nanoseconds when the time has them) and
// is left out when r.Time is zero; values keep their order; label is left out
// when empty.
//
// AppendReading does not validate r and always produces valid JSON: invalid
// UTF-8 becomes U+FFFD and a NaN or infinite value becomes null, which
// ParseReading then rejects. Call [EncodeReading] or [Reading.Validate] when r
// may be invalid.
func AppendReading(dst []byte, r records.Reading) []byte {
	dst = append(dst, `{"device":`...)
	dst = jsonstr.Append(dst, r.Device)
	if !r.Time.IsZero() {
		dst = append(dst, `,"ts":"`...)
		dst = appendTime(dst, r.Time)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"values":{`...)
	for i, v := range r.Values {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonstr.Append(dst, v.Name)
		dst = append(dst, ':')
		dst = appendFloat(dst, v.Value)
	}
	dst = append(dst, '}')
	if r.Label != "" {
		dst = append(dst, `,"label":`...)
		dst = jsonstr.Append(dst, r.Label)
	}
	return append(dst, '}')
}

func encodedSizeHint(r *records.Reading) int {
	n := 64 + len(r.Device) + len(r.Label)
	for _, v := range r.Values {
		n += len(v.Name) + 24
	}
	return n
}

// appendTime writes t in UTC with exactly three fractional digits when t is a
// whole millisecond (the common case, and easy to read) and nine otherwise.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	if t.Nanosecond()%int(time.Millisecond) == 0 {
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	}
	return t.AppendFormat(dst, "2006-01-02T15:04:05.000000000Z07:00")
}

// appendFloat formats like encoding/json: shortest representation that
// round-trips, exponent only for very small or very large magnitudes.
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-07 → e-7, as encoding/json does.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// findDuplicate returns the positions of two values with the same name.
// Readings usually have a handful of values, so a quadratic scan is fastest;
// long lists go through a map so that a hostile message with many thousands
// of values cannot make the check quadratic.
func findDuplicate(vals []records.Value) (int, int, bool) {
	if len(vals) <= 16 {
		for j := 1; j < len(vals); j++ {
			for i := 0; i < j; i++ {
				if vals[i].Name == vals[j].Name {
					return i, j, true
				}
			}
		}
		return 0, 0, false
	}
	if len(vals) <= maxTableValues {
		return findDuplicateTable(vals)
	}
	seen := make(map[string]int, len(vals))
	for j, v := range vals {
		if i, ok := seen[v.Name]; ok {
			return i, j, true
		}
		seen[v.Name] = j
	}
	return 0, 0, false
}

// quoteForError quotes s for an error message, shortened so that a hostile
// message cannot produce a megabyte-long dead-letter header.
func quoteForError(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

// maxTableValues is the most values findDuplicateTable takes: its table,
// twice as many slots, lives on the stack.
const maxTableValues = 256

// findDuplicateTable is findDuplicate for up to maxTableValues values,
// without allocating.
func findDuplicateTable(vals []records.Value) (int, int, bool) {
	var t nameTable
	for j := range vals {
		if i, dup := t.add(vals, j); dup {
			return i, j, true
		}
	}
	return 0, 0, false
}

// nameTable finds repeated value names among up to maxTableValues values
// without allocating: an open-addressing table of value indexes (plus one;
// 0 is empty) by FNV-1a of the name, probed linearly.
type nameTable [2 * maxTableValues]uint16

// add enters vals[j]'s name, or returns the index of the earlier value of
// that name.
func (t *nameTable) add(vals []records.Value, j int) (int, bool) {
	name := vals[j].Name
	h := uint32(2166136261)
	for k := 0; k < len(name); k++ {
		h = (h ^ uint32(name[k])) * 16777619
	}
	const mask = len(t) - 1
	for slot := int(h) & mask; ; slot = (slot + 1) & mask {
		at := t[slot]
		if at == 0 {
			t[slot] = uint16(j + 1)
			return 0, false
		}
		if i := int(at - 1); vals[i].Name == name {
			return i, true
		}
	}
}
