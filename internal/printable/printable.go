package printable

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultMax is the most runes String keeps when a caller has no reason to
// choose.
const DefaultMax = 120

// String returns s with control characters, other non-printable runes and
// invalid bytes escaped as Go escapes them (\x1b, \u202e, \xff), cut to at
// most max runes of the escaped form with "…(N bytes)" appended when cut.
// A max below 1 means DefaultMax.
func String(s string, max int) string {
	if max < 1 {
		max = DefaultMax
	}
	var b strings.Builder
	runes := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && size == 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case unicode.IsPrint(r) || r == ' ':
			piece = s[i : i+size]
		default:
			q := strconv.QuoteRune(r) // '\x1b', '\u202e'
			piece = q[1 : len(q)-1]
		}
		n := utf8.RuneCountInString(piece)
		if runes+n > max {
			fmt.Fprintf(&b, "…(%d bytes)", len(s))
			return b.String()
		}
		b.WriteString(piece)
		runes += n
		i += size
	}
	return b.String()
}
