package predict_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/internal/auth"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/compress"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/serve/predict"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/infer"
)

const (
	readToken  = "read-token-0123456789abcdef"
	writeToken = "write-token-0123456789abcdef"
)

// content is a signed snapshot of a softmax model on features a and b:
// class "x" when a > b, "y" otherwise (bias shifts y). Its preprocessing
// subtracts mean (the same for both features) so that a request's raw
// rows must go through it.
func content(t *testing.T, key []byte, bias float64) modelstore.Content {
	t.Helper()
	d := models.Desc{Kind: models.Softmax, Inputs: 2, Classes: 2}
	m, err := models.FromParams(d, []float64{10, 0, 0, 10, 0, bias})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := compress.Tensors(m, snapshot.Float32)
	if err != nil {
		t.Fatal(err)
	}
	pre := analyze.Spec{Features: 2, Count: []int64{1, 1}, Mean: []float64{100, 100}, Std: []float64{1, 1}, Min: []float64{0, 0}, Max: []float64{1, 1}, Names: []string{"a", "b"}}
	pj, _ := json.Marshal(pre)
	return func(seq uint64) (io.Reader, error) {
		var buf bytes.Buffer
		man := snapshot.Manifest{Name: "m", Version: seq, Model: d, Labels: []string{"x", "y"}, Preprocess: pj, Compression: snapshot.Compression{Weights: "float32"}}
		return &buf, snapshot.Write(&buf, man, ts, key)
	}
}

type fixture struct {
	srv   *httptest.Server
	store *modelstore.Dir
	key   []byte
}

func start(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	priv, pub, err := snapshot.GenerateKey(filepath.Join(dir, "keys"), "t")
	if err != nil {
		t.Fatal(err)
	}
	key, err := snapshot.LoadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := snapshot.LoadKeyring(pub)
	if err != nil {
		t.Fatal(err)
	}
	store := &modelstore.Dir{Root: filepath.Join(dir, "store")}
	if _, err := store.Publish(context.Background(), "m", content(t, key, 0)); err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokFile, []byte("# predict clients\nread "+readToken+"\nwrite "+writeToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	toks, err := auth.Load(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(predict.New(infer.NewServer(store, ring, nil, time.Millisecond), toks))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, store: store, key: key}
}

func (f *fixture) call(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: answer not JSON: %v", method, path, err)
	}
	return resp.StatusCode, out
}

func TestPredict(t *testing.T) {
	f := start(t)
	// Raw rows around the training mean (100): the preprocessing makes
	// a > b → x.
	code, out := f.call(t, "POST", "/v1/models/m:predict", readToken, `{"rows": [[101, 99], {"a": 99, "b": 101}]}`)
	if code != 200 {
		t.Fatalf("status %d: %v", code, out)
	}
	preds := out["predictions"].([]any)
	if out["model"] != "m@1" || len(preds) != 2 {
		t.Fatalf("answer %v, want two predictions by m@1", out)
	}
	if l := preds[0].(map[string]any)["label"]; l != "x" {
		t.Errorf("row 0 labelled %v, want x", l)
	}
	if l := preds[1].(map[string]any)["label"]; l != "y" {
		t.Errorf("row 1 labelled %v, want y", l)
	}
	if s := preds[0].(map[string]any)["score"].(float64); s < 0.99 {
		t.Errorf("row 0 score %v, want near 1", s)
	}
}

func TestPredictRefusesBadRequests(t *testing.T) {
	f := start(t)
	for _, tt := range []struct {
		name, path, token, body string
		code                    int
		says                    string
	}{
		{"no token", "/v1/models/m:predict", "", `{"rows": [[1, 2]]}`, 401, "bearer token is required"},
		{"unknown token", "/v1/models/m:predict", "not-a-token-of-this-server", `{"rows": [[1, 2]]}`, 401, "not one this server accepts"},
		{"other model", "/v1/models/other:predict", readToken, `{"rows": [[1, 2]]}`, 404, `serves "m"`},
		{"no call", "/v1/models/m", readToken, `{"rows": [[1, 2]]}`, 404, ":predict"},
		{"not json", "/v1/models/m:predict", readToken, `rows=1`, 400, "not a JSON object"},
		{"unknown field", "/v1/models/m:predict", readToken, `{"rows": [[1, 2]], "x": 1}`, 400, "unknown field"},
		{"no rows", "/v1/models/m:predict", readToken, `{"rows": []}`, 400, "no rows"},
		{"short row", "/v1/models/m:predict", readToken, `{"rows": [[1]]}`, 400, "rows[0]: 1 values; m@1 takes 2 features"},
		{"unknown feature", "/v1/models/m:predict", readToken, `{"rows": [{"a": 1, "c": 2}]}`, 400, `no feature "c"`},
		{"missing feature", "/v1/models/m:predict", readToken, `{"rows": [{"a": 1}]}`, 400, "1 of m@1's 2 features named"},
		{"not a number", "/v1/models/m:predict", readToken, `{"rows": [[1, "2"]]}`, 400, "not a list of numbers"},
		{"write token works", "/v1/models/m:predict", writeToken, `{"rows": [[1, 2]]}`, 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := f.call(t, "POST", tt.path, tt.token, tt.body)
			if code != tt.code {
				t.Fatalf("status %d (%v), want %d", code, out, tt.code)
			}
			if tt.says != "" && !strings.Contains(out["error"].(string), tt.says) {
				t.Errorf("error %q does not say %q", out["error"], tt.says)
			}
		})
	}
	big := `{"rows": [` + strings.Repeat(`[1, 2],`, predict.MaxBodyBytes/7) + `[1, 2]]}`
	if code, _ := f.call(t, "POST", "/v1/models/m:predict", readToken, big); code != 413 {
		t.Errorf("a body over the limit: status %d, want 413", code)
	}
	if code, out := f.call(t, "GET", "/healthz", "", ""); code != 200 || out["model"] != "m@1" {
		t.Errorf("healthz without a token: %d %v, want 200 naming m@1", code, out)
	}
}

// A newer version serves as soon as it is published; a tampered one is
// refused and the one before keeps serving.
func TestPredictHotReload(t *testing.T) {
	f := start(t)
	if _, err := f.store.Publish(context.Background(), "m", content(t, f.key, 50)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	code, out := f.call(t, "POST", "/v1/models/m:predict", readToken, `{"rows": [[101, 99]]}`)
	if code != 200 || out["model"] != "m@2" {
		t.Fatalf("after publishing m@2: %d %v", code, out)
	}
	if l := out["predictions"].([]any)[0].(map[string]any)["label"]; l != "y" {
		t.Errorf("m@2 (bias 50 towards y) labelled %v, want y", l)
	}
	bad := content(t, f.key, 0)
	tampered := func(seq uint64) (io.Reader, error) {
		r, err := bad(seq)
		if err != nil {
			return nil, err
		}
		b, _ := io.ReadAll(r)
		b[len(b)-5] ^= 1
		return bytes.NewReader(b), nil
	}
	if _, err := f.store.Publish(context.Background(), "m", tampered); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if code, out := f.call(t, "POST", "/v1/models/m:predict", readToken, `{"rows": [[101, 99]]}`); code != 200 || out["model"] != "m@2" {
		t.Errorf("after a tampered m@3: %d %v, want m@2 still serving", code, out)
	}
}

// BenchmarkPredict is one request of one digits-sized row (64 features,
// an MLP of 100 units, 10 classes) through the handler, token check,
// parsing, preprocessing, prediction and answer included.
func BenchmarkPredict(b *testing.B) {
	dir := b.TempDir()
	priv, pub, err := snapshot.GenerateKey(filepath.Join(dir, "keys"), "b")
	if err != nil {
		b.Fatal(err)
	}
	key, _ := snapshot.LoadPrivateKey(priv)
	ring, _ := snapshot.LoadKeyring(pub)
	d := models.Desc{Kind: models.MLP, Inputs: 64, Hidden: []int{100}, Head: models.SoftmaxHead, Classes: 10}
	m, err := models.New(d, 1)
	if err != nil {
		b.Fatal(err)
	}
	ts, err := compress.Tensors(m, snapshot.Float32)
	if err != nil {
		b.Fatal(err)
	}
	pre := analyze.Spec{Features: 64}
	labels := make([]string, 10)
	for i := range 64 {
		pre.Count, pre.Mean, pre.Std, pre.Min, pre.Max = append(pre.Count, 1), append(pre.Mean, 5), append(pre.Std, 3), append(pre.Min, 0), append(pre.Max, 16)
		pre.Names = append(pre.Names, "Block "+strconv.Itoa(i+1))
	}
	for i := range labels {
		labels[i] = strconv.Itoa(i)
	}
	pj, _ := json.Marshal(pre)
	store := &modelstore.Dir{Root: filepath.Join(dir, "store")}
	if _, err := store.Publish(context.Background(), "digits", func(seq uint64) (io.Reader, error) {
		var buf bytes.Buffer
		man := snapshot.Manifest{Name: "digits", Version: seq, Model: d, Labels: labels, Preprocess: pj, Compression: snapshot.Compression{Weights: "float32"}}
		return &buf, snapshot.Write(&buf, man, ts, key)
	}); err != nil {
		b.Fatal(err)
	}
	tokFile := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokFile, []byte("read "+readToken+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	toks, _ := auth.Load(tokFile)
	h := predict.New(infer.NewServer(store, ring, nil, time.Second), toks)
	body := []byte(`{"rows": [[0,1,6,15,12,1,0,0,0,7,16,6,6,10,0,0,0,8,16,2,0,11,2,0,0,5,16,3,0,5,7,0,0,7,13,3,0,8,7,0,0,4,12,0,1,13,5,0,0,0,14,9,15,9,0,0,0,0,6,14,7,1,0,0]]}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest("POST", "/v1/models/digits:predict", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+readToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// Serve ends cleanly when its context ends even with a client connection
// open that never sent a request (net/http counts it as busy for 5 s and
// Shutdown would time out): it closes what is left.
func TestServeEndsWithAnIdleClient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- predict.Serve(ctx, srv, func() error { return srv.Serve(l) }) }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond) // accepted: StateNew
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v, want a clean end", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not end")
	}
}
