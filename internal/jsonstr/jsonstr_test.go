package jsonstr

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

var cases = []string{
	"", "digits-test/3/17", "optdigits", "a\"b\\c", "line\nbreak\r\ttab\b\f", "\x00\x01\x1f\x7f",
	"<script>&amp;</script>", "héllo wörld ✓", "\u2028\u2029", "bad \xff\xfe utf-8", "\xe2\x82", "emoji 🙂",
}

// marshal is encoding/json's string without HTML escaping.
func marshal(s string) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// Append writes what encoding/json writes, for every kind of string.
func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, s := range cases {
		want := marshal(s)
		if got := Append(nil, s); string(got) != want {
			t.Errorf("Append(%q) = %s, want %s", s, got, want)
		}
	}
}

// AppendJoin writes the joined string as Append does.
func TestAppendJoin(t *testing.T) {
	for _, a := range cases {
		for _, b := range []string{"", "train-digits@2", "x\"y\n"} {
			if got, want := AppendJoin(nil, a, "/", b), Append(nil, a+"/"+b); string(got) != string(want) {
				t.Errorf("AppendJoin(%q, /, %q) = %s, want %s", a, b, got, want)
			}
		}
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range cases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := marshal(s)
		if got := Append(nil, s); string(got) != want {
			t.Errorf("Append(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	buf := make([]byte, 0, 64)
	for _, bc := range []struct {
		name string
		fn   func([]byte, string) []byte
	}{{"jsonstr", Append}, {"strconv.AppendQuote", strconv.AppendQuote}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				buf = bc.fn(buf[:0], "digits-test-1234/3/170234/train-digits@12")
			}
		})
	}
}
