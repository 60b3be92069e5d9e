// Package predict serves a model store's newest verified snapshot over
// HTTP: POST /v1/models/{name}:predict with rows of raw features, scored
// with the snapshot's own preprocessing, each answer naming the model
// version that made it. The store is checked for a newer version (hot
// reload) as inference jobs check it; a version that does not verify is
// refused and the one before keeps serving.
package predict

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/muonml/muon/internal/auth"
	"github.com/muonml/muon/internal/printable"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/transforms/infer"
)

// Limits of one request.
const (
	// MaxBodyBytes is the largest request body.
	MaxBodyBytes = 8 << 20
	// MaxRows is the most rows one request scores.
	MaxRows = 10_000
)

// Request is the body of a predict call: rows of raw features, each
// either a list of the model's features in its order or an object of
// feature name → value (every feature named).
type Request struct {
	Rows []json.RawMessage `json:"rows"`
}

// Response is the answer of a predict call.
type Response struct {
	// Model is the version that scored every row: name@seq.
	Model string `json:"model"`
	// Labels are a classifier's classes, in the order of each
	// prediction's Scores.
	Labels      []string     `json:"labels,omitempty"`
	Predictions []Prediction `json:"predictions"`
}

// Prediction is one row's: a classifier's Label, its Score (probability)
// and every class's Scores; a regressor's Values.
type Prediction struct {
	Label  string    `json:"label,omitempty"`
	Score  float64   `json:"score,omitempty"`
	Scores []float64 `json:"scores,omitempty"`
	Values []float64 `json:"values,omitempty"`
}

// append appends r as JSON, as encoding/json would write it, without
// reflection: the answer of every call.
func (r *Response) append(b []byte) []byte {
	b = append(b, `{"model":`...)
	b = appendString(b, r.Model)
	if len(r.Labels) > 0 {
		b = append(b, `,"labels":[`...)
		for i, l := range r.Labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, l)
		}
		b = append(b, ']')
	}
	b = append(b, `,"predictions":[`...)
	for i := range r.Predictions {
		p := &r.Predictions[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if p.Values != nil {
			b = appendFloats(append(b, `"values":`...), p.Values)
		} else {
			b = append(b, `"label":`...)
			b = appendString(b, p.Label)
			b = appendFloat(append(b, `,"score":`...), p.Score)
			b = appendFloats(append(b, `,"scores":`...), p.Scores)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

func appendFloats(b []byte, vs []float64) []byte {
	b = append(b, '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFloat(b, v)
	}
	return append(b, ']')
}

// appendFloat writes v as encoding/json does.
func appendFloat(b []byte, v float64) []byte {
	format := byte('f')
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, v, format, -1, 64)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1] // e-09 → e-9
		b = b[:n-1]
	}
	return b
}

// appendString writes s as a JSON string, as encoding/json does.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Handler serves the API. Its zero value is not usable: use New.
type Handler struct {
	server *infer.Server
	tokens *auth.Tokens
	mux    *http.ServeMux
	pool   sync.Pool // *[]byte for answers
}

// New serves the models of server; requests need a token of tokens (read
// scope is enough). GET /healthz needs none.
func New(server *infer.Server, tokens *auth.Tokens) *Handler {
	h := &Handler{server: server, tokens: tokens, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /v1/models", h.authed(h.list))
	h.mux.HandleFunc("POST /v1/models/{call}", h.authed(h.predict))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// authed wraps f with the token check.
func (h *Handler) authed(f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if code, err := h.tokens.Check(r, auth.Read); err != nil {
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="muon"`)
			}
			fail(w, code, err.Error())
			return
		}
		f(w, r)
	}
}

// healthz says whether a model serves: 200 with its version, or 503.
func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	m, err := h.server.Current(r.Context())
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "no model serves: "+printable.String(err.Error(), 500))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "model": m.Name()})
}

// list describes the model serving: its name, version, features and
// classes.
func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	m, err := h.server.Current(r.Context())
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "no model serves: "+printable.String(err.Error(), 500))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": []any{map[string]any{
		"name": m.Version.Name, "version": m.Name(), "features": m.Pre.Names, "labels": m.Manifest.Labels,
	}}})
}

func (h *Handler) predict(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("call"), ":predict")
	if !ok {
		fail(w, http.StatusNotFound, "no such call: POST /v1/models/{name}:predict")
		return
	}
	// curl -d sends application/x-www-form-urlencoded: take it as JSON.
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		fail(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: send application/json", printable.String(ct, 100)))
		return
	}
	m, err := h.server.Current(r.Context())
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "no model serves: "+printable.String(err.Error(), 500))
		return
	}
	if name != m.Version.Name {
		fail(w, http.StatusNotFound, fmt.Sprintf("no model %q here: this server serves %q", printable.String(name, 100), m.Version.Name))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a body over %d bytes: send fewer rows per request", MaxBodyBytes))
			return
		}
		fail(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	raw, n, err := parseRows(body, m)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	out, err := m.PredictRaw(raw, n)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	resp := Response{Model: m.Name(), Predictions: make([]Prediction, n)}
	k := m.Model.Outputs()
	classifier := m.Model.Head() == models.SoftmaxHead
	if classifier {
		resp.Labels = m.Manifest.Labels
	}
	for i := range resp.Predictions {
		row := out[i*k : (i+1)*k]
		if classifier {
			best := models.Argmax(row)
			resp.Predictions[i] = Prediction{Label: m.Manifest.Labels[best], Score: row[best], Scores: row}
		} else {
			resp.Predictions[i] = Prediction{Values: row}
		}
	}
	buf, _ := h.pool.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	*buf = resp.append((*buf)[:0])
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Muon-Model", m.Name())
	_, _ = w.Write(*buf)
	h.pool.Put(buf)
}

// parseRows decodes a request's rows into row-major raw features in the
// model's order.
func parseRows(body []byte, m *infer.Model) ([]float64, int, error) {
	if m.Pre.Rocket != nil {
		return parseSeriesRows(body, m)
	}
	if raw, n, ok := parseNumberRows(body, m.Pre.Features); ok {
		return raw, n, nil
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, 0, fmt.Errorf("the body is not a JSON object {\"rows\": [...]}: %v", err)
	}
	n := len(req.Rows)
	switch {
	case n == 0:
		return nil, 0, errors.New(`no rows: send {"rows": [[feature values...], ...]}`)
	case n > MaxRows:
		return nil, 0, fmt.Errorf("%d rows: at most %d per request", n, MaxRows)
	}
	dim := m.Pre.Features
	index := make(map[string]int, dim)
	for i, f := range m.Pre.Names {
		index[f] = i
	}
	raw := make([]float64, n*dim)
	for i, r := range req.Rows {
		row := raw[i*dim : (i+1)*dim]
		r = bytes.TrimSpace(r)
		switch {
		case len(r) > 0 && r[0] == '[':
			var vals []float64
			if err := json.Unmarshal(r, &vals); err != nil {
				return nil, 0, fmt.Errorf("rows[%d]: not a list of numbers: %v", i, err)
			}
			if len(vals) != dim {
				return nil, 0, fmt.Errorf("rows[%d]: %d values; %s takes %d features (%s)", i, len(vals), m.Name(), dim, describeNames(m.Pre.Names))
			}
			copy(row, vals)
		case len(r) > 0 && r[0] == '{':
			var obj map[string]float64
			if err := json.Unmarshal(r, &obj); err != nil {
				return nil, 0, fmt.Errorf("rows[%d]: not an object of feature name → number: %v", i, err)
			}
			seen := 0
			for f, v := range obj {
				j, ok := index[f]
				if !ok {
					return nil, 0, fmt.Errorf("rows[%d]: %s has no feature %q (%s)", i, m.Name(), printable.String(f, 100), describeNames(m.Pre.Names))
				}
				row[j] = v
				seen++
			}
			if seen != dim {
				return nil, 0, fmt.Errorf("rows[%d]: %d of %s's %d features named; name them all", i, seen, m.Name(), dim)
			}
		default:
			return nil, 0, fmt.Errorf("rows[%d]: a row is a list of numbers or an object of feature name → number", i)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, 0, fmt.Errorf("rows[%d]: feature %q is %v", i, m.Pre.Names[j], v)
			}
		}
	}
	return raw, n, nil
}

// parseNumberRows is parseRows' fast path, for the common body
// {"rows": [[numbers], ...]} with dim numbers a row: false for anything
// else (objects, other fields, a wrong count, NaN), which the slow path
// then parses, or refuses with its reason.
func parseNumberRows(b []byte, dim int) ([]float64, int, bool) {
	i := 0
	skip := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
			i++
		}
	}
	expect := func(c byte) bool {
		skip()
		if i < len(b) && b[i] == c {
			i++
			return true
		}
		return false
	}
	if !expect('{') {
		return nil, 0, false
	}
	skip()
	if !bytes.HasPrefix(b[i:], []byte(`"rows"`)) {
		return nil, 0, false
	}
	i += len(`"rows"`)
	if !expect(':') || !expect('[') {
		return nil, 0, false
	}
	raw := make([]float64, 0, dim)
	n := 0
	for {
		if !expect('[') {
			return nil, 0, false
		}
		for k := 0; k < dim; k++ {
			skip()
			j := i
			for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
				j++
			}
			v, err := strconv.ParseFloat(string(b[i:j]), 64)
			if err != nil || math.IsInf(v, 0) {
				return nil, 0, false
			}
			raw = append(raw, v)
			i = j
			if k < dim-1 && !expect(',') {
				return nil, 0, false
			}
		}
		if !expect(']') {
			return nil, 0, false
		}
		n++
		if n > MaxRows {
			return nil, 0, false
		}
		if expect(',') {
			continue
		}
		if !expect(']') || !expect('}') {
			return nil, 0, false
		}
		skip()
		return raw, n, i == len(b)
	}
}

func describeNames(names []string) string {
	if len(names) <= 4 {
		return fmt.Sprintf("%q", names)
	}
	return fmt.Sprintf("%q … %q", names[:2], names[len(names)-1])
}

func fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Serve runs serve (srv's Serve or ServeTLS on a listener) until it fails
// or ctx ends, then shuts srv down, letting requests in flight finish for
// up to 5 s; then it closes what is still open (a client's connection that
// never sent a request counts as busy for its first 5 s).
func Serve(ctx context.Context, srv *http.Server, serve func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); errors.Is(err, context.DeadlineExceeded) {
		_ = srv.Close()
	} else if err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// parseSeriesRows decodes the rows of a model that makes its features
// from series (MiniRocket): each row a list of the channels' value lists,
// of equal lengths, 1 to the model's length each; a shorter series is
// padded as training padded it.
func parseSeriesRows(body []byte, m *infer.Model) ([]float64, int, error) {
	r := m.Pre.Rocket
	var req struct {
		Rows [][][]float64 `json:"rows"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, 0, fmt.Errorf("%s makes its features from series: send {\"rows\": [[[channel 1 values...], ...], ...]}, %d channels of up to %d values a row: %v", m.Name(), r.Channels, r.Length, err)
	}
	n := len(req.Rows)
	switch {
	case n == 0:
		return nil, 0, fmt.Errorf("no rows: send {\"rows\": [[[channel 1 values...], ...], ...]}, %d channels of up to %d values a row", r.Channels, r.Length)
	case n > MaxRows:
		return nil, 0, fmt.Errorf("%d rows: at most %d per request", n, MaxRows)
	}
	width := r.Channels * r.Length
	raw := make([]float64, n*width)
	for i, row := range req.Rows {
		if len(row) != r.Channels {
			return nil, 0, fmt.Errorf("rows[%d]: %d channels; %s takes %d", i, len(row), m.Name(), r.Channels)
		}
		for c, ch := range row {
			if len(ch) == 0 || len(ch) > r.Length || len(ch) != len(row[0]) {
				return nil, 0, fmt.Errorf("rows[%d][%d]: %d values; %s takes 1 to %d a channel, the same number in every channel", i, c, len(ch), m.Name(), r.Length)
			}
			dst := raw[i*width+c*r.Length : i*width+(c+1)*r.Length]
			copy(dst, ch)
			for t := len(ch); t < r.Length; t++ {
				dst[t] = math.NaN()
			}
		}
	}
	return raw, n, nil
}
