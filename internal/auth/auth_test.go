package auth

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadAndCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	if err := os.WriteFile(path, []byte("# clients\n\nread reader-0123456789abcdef\nwrite writer-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	toks, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	check := func(header string, need Scope) int {
		r, _ := http.NewRequest("GET", "/", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		code, _ := toks.Check(r, need)
		return code
	}
	for _, tt := range []struct {
		header string
		need   Scope
		want   int
	}{
		{"", Read, 401},
		{"Basic abc", Read, 401},
		{"Bearer nope-nope-nope-nope", Read, 401},
		{"Bearer reader-0123456789abcdef", Read, 0},
		{"Bearer reader-0123456789abcdef", Write, 403},
		{"Bearer writer-0123456789abcdef", Write, 0},
		{"Bearer writer-0123456789abcdef", Read, 0},
	} {
		if got := check(tt.header, tt.need); got != tt.want {
			t.Errorf("%q needing %d: %d, want %d", tt.header, tt.need, got, tt.want)
		}
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	for _, tt := range []struct{ content, says string }{
		{"", "holds no token"},
		{"admin abcdefabcdefabcdefabcdef\n", `scope "admin"`},
		{"read short\n", "at least 16"},
		{"read\n", `want "read <token>"`},
	} {
		path := filepath.Join(t.TempDir(), "tokens")
		if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%q: error %v, want one saying %q", tt.content, err, tt.says)
		}
		if err != nil && strings.Contains(err.Error(), "abcdefabcdef") {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}
