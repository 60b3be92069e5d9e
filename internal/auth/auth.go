// Package auth checks the bearer tokens of muon's HTTP APIs against a
// tokens file: one token a line, "read <token>" or "write <token>"; blank
// lines and lines starting with # are ignored. Tokens are compared in
// constant time, and never appear in errors or logs.
package auth

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// Scope is what a token may do.
type Scope int

// Scopes, each including the one before.
const (
	None Scope = iota
	Read
	Write
)

// MinTokenLength is the shortest token accepted: a token is a secret, not
// a password someone types.
const MinTokenLength = 16

// Tokens are the tokens of a tokens file. The zero value accepts nothing.
type Tokens struct {
	// sums are the tokens' SHA-256 digests: every comparison takes the
	// same time whatever the token's length.
	sums   [][sha256.Size]byte
	scopes []Scope
}

// Load reads a tokens file. Errors name the file and line, never a token.
func Load(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err == nil && st.Mode().Perm()&0o077 != 0 {
		// Readable by others: say so, as ssh does, but serve.
		fmt.Fprintf(os.Stderr, "muon: warning: tokens file %s is readable by other users (mode %v); chmod 600 it\n", path, st.Mode().Perm())
	}
	var t Tokens
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		scope, tok, ok := strings.Cut(text, " ")
		tok = strings.TrimSpace(tok)
		if !ok || tok == "" || strings.ContainsAny(tok, " \t") {
			return nil, fmt.Errorf("%s:%d: want \"read <token>\" or \"write <token>\"", path, line)
		}
		var s Scope
		switch scope {
		case "read":
			s = Read
		case "write":
			s = Write
		default:
			return nil, fmt.Errorf("%s:%d: scope %q: want read or write", path, line, scope)
		}
		if len(tok) < MinTokenLength {
			return nil, fmt.Errorf("%s:%d: a token of %d characters; use at least %d (for example: openssl rand -hex 32)", path, line, len(tok), MinTokenLength)
		}
		t.sums = append(t.sums, sha256.Sum256([]byte(tok)))
		t.scopes = append(t.scopes, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	if len(t.sums) == 0 {
		return nil, fmt.Errorf("tokens file %s holds no token: add a line \"read <token>\" or \"write <token>\"", path)
	}
	return &t, nil
}

// Scope returns what token may do: None if it is not in the file. Every
// token of the file is compared, in constant time.
func (t *Tokens) Scope(token string) Scope {
	sum := sha256.Sum256([]byte(token))
	got := None
	for i := range t.sums {
		if subtle.ConstantTimeCompare(sum[:], t.sums[i][:]) == 1 {
			got = t.scopes[i]
		}
	}
	return got
}

// ErrNoToken and ErrForbidden are what Check answers.
var (
	ErrNoToken   = errors.New("a bearer token is required (Authorization: Bearer <token>)")
	ErrBadToken  = errors.New("the bearer token is not one this server accepts")
	ErrForbidden = errors.New("the token may only read; this needs a write token")
)

// Check returns nil if r carries a token with at least scope need, else
// the HTTP status (401 or 403) and why.
func (t *Tokens) Check(r *http.Request, need Scope) (int, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return http.StatusUnauthorized, ErrNoToken
	}
	switch s := t.Scope(strings.TrimSpace(tok)); {
	case s == None:
		return http.StatusUnauthorized, ErrBadToken
	case s < need:
		return http.StatusForbidden, ErrForbidden
	}
	return 0, nil
}
