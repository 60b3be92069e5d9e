package printable

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"walk", 0, "walk"},
		{"Gerät température 日本", 0, "Gerät température 日本"},
		{"\x1b]0;owned\x07title", 0, `\x1b]0;owned\atitle`},
		{"a\nb\tc\r", 0, `a\nb\tc\r`},
		{"bad\xffutf8", 0, `bad\xffutf8`},
		{"rtl\u202eoverride", 0, `rtl\u202eoverride`},
		{strings.Repeat("x", 900_000), 10, "xxxxxxxxxx…(900000 bytes)"},
		{"abc\x1bdef", 5, `abc…(7 bytes)`},
	}
	for _, tt := range tests {
		got := String(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("String(%.20q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Errorf("String(%.20q) kept control character %U", tt.in, r)
			}
		}
	}
}
