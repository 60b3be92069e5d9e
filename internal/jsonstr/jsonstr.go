// Package jsonstr writes JSON strings without encoding/json's reflection:
// for encoders that run once per record.
package jsonstr

import "unicode/utf8"

const hex = "0123456789abcdef"

// safe[c] is true for the ASCII bytes a JSON string holds as they are.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Append appends s to dst as a quoted JSON string, escaped as
// encoding/json escapes it without its HTML escaping (an Encoder with
// SetEscapeHTML(false)): quotes, backslashes and control characters,
// U+2028 and U+2029 (so that the text is valid JavaScript too), and each
// byte of invalid UTF-8 as U+FFFD.
func Append(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendBody(dst, s)
	return append(dst, '"')
}

// AppendJoin appends a, sep and b to dst as one quoted JSON string, as
// Append(dst, a+sep+b) does without making that string.
func AppendJoin(dst []byte, a, sep, b string) []byte {
	dst = append(dst, '"')
	dst = appendBody(dst, a)
	dst = appendBody(dst, sep)
	dst = appendBody(dst, b)
	return append(dst, '"')
}

// appendBody appends s escaped, without quotes. A multi-byte sequence
// split between two calls is invalid UTF-8 in each: callers split only at
// whole characters.
func appendBody(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}
