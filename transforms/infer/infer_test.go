package infer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/compress"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/infer"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function2x0(makeBatches)
	register.Function1x1(describe)
	register.Emitter1[arrowio.Batch]()
}

var names = []string{"a", "b"}

// snap is a signed snapshot of a softmax model on features a and b whose
// class is the larger feature when bias is 0 ("x" for a, "y" for b); the
// preprocessing is the identity. bias shifts class y's logit. It is signed
// as the version the store gives it.
func snap(t *testing.T, key []byte, features []string, bias float64) modelstore.Content {
	t.Helper()
	d := models.Desc{Kind: models.Softmax, Inputs: len(features), Classes: 2}
	// weights [inputs][classes], then biases
	params := make([]float64, 0, 3*len(features))
	for i := range features {
		params = append(params, float64(1-i)*10, float64(i)*10)
	}
	params = append(params, 0, bias)
	m, err := models.FromParams(d, params)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := compress.Tensors(m, snapshot.Float32)
	if err != nil {
		t.Fatal(err)
	}
	n := len(features)
	pre := analyze.Spec{Features: n, Count: make([]int64, n), Mean: make([]float64, n), Std: make([]float64, n), Min: make([]float64, n), Max: make([]float64, n), Names: features}
	for i := range pre.Std {
		pre.Std[i] = 1
	}
	pj, _ := json.Marshal(pre)
	return func(seq uint64) (io.Reader, error) {
		var buf bytes.Buffer
		man := snapshot.Manifest{Name: "m", Version: seq, Model: d, Labels: []string{"x", "y"}, Preprocess: pj, Compression: snapshot.Compression{Weights: "float32"}}
		err := snapshot.Write(&buf, man, ts, key)
		return &buf, err
	}
}

// tampered is c with one bit flipped near its end.
func tampered(c modelstore.Content) modelstore.Content {
	return func(seq uint64) (io.Reader, error) {
		r, err := c(seq)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(r)
		b[len(b)-5] ^= 1
		return bytes.NewReader(b), err
	}
}

func newStore(t *testing.T) (*modelstore.Dir, []byte, string) {
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
	return &modelstore.Dir{Root: filepath.Join(dir, "store")}, key, pub
}

func publish(t *testing.T, st *modelstore.Dir, c modelstore.Content) {
	t.Helper()
	if _, err := st.Publish(context.Background(), "m", c); err != nil {
		t.Fatal(err)
	}
}

// twoVersions is a store holding m@1 and m@2, and the keyring that
// verifies them.
func twoVersions(t *testing.T) (*modelstore.Dir, snapshot.Keyring) {
	t.Helper()
	st, key, pub := newStore(t)
	ring, err := snapshot.LoadKeyring(pub)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, st, snap(t, key, names, 0))
	publish(t, st, snap(t, key, names, 1))
	return st, ring
}

// A store whose LATEST pointer is gone still serves its newest version
// that verifies (issue: the store failed closed on its unsigned pointer).
func TestServerWithoutPointer(t *testing.T) {
	ctx := context.Background()
	st, ring := twoVersions(t)
	if err := os.Remove(filepath.Join(st.Root, "LATEST")); err != nil {
		t.Fatal(err)
	}
	m, err := infer.NewServer(st, ring, names, 0).Current(ctx)
	if err != nil || m.Name() != "m@2" {
		t.Fatalf("serving %v (%v) without a LATEST pointer, want m@2", m, err)
	}
}

// A new version serves on the next check; a corrupt one, one signed by
// an unknown key and one trained on other features are each refused once,
// and the model before them keeps serving.
func TestServerReloadsAndRefuses(t *testing.T) {
	ctx := context.Background()
	st, key, pub := newStore(t)
	ring, err := snapshot.LoadKeyring(pub)
	if err != nil {
		t.Fatal(err)
	}
	srv := infer.NewServer(st, ring, names, 0)
	if _, err := srv.Current(ctx); !errors.Is(err, infer.ErrNoModel) {
		t.Fatalf("empty store: %v", err)
	}
	publish(t, st, snap(t, key, names, 0))
	m, err := srv.Current(ctx)
	if err != nil || m.Name() != "m@1" {
		t.Fatalf("serving %v (%v), want m@1", m, err)
	}
	publish(t, st, snap(t, key, names, 1))
	if m, _ = srv.Current(ctx); m.Name() != "m@2" {
		t.Fatalf("serving %s after publishing m@2", m.Name())
	}

	publish(t, st, tampered(snap(t, key, names, 2)))
	_, other, err := ed25519Key(t)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, st, snap(t, other, names, 3))
	publish(t, st, snap(t, key, []string{"a", "c"}, 4))
	for range 2 { // refused once, not retried
		if m, err = srv.Current(ctx); err != nil || m.Name() != "m@2" {
			t.Fatalf("serving %v (%v) after three bad versions, want m@2", m, err)
		}
	}
	var reasons []string
	for _, e := range refusals(srv) {
		reasons = append(reasons, e.Error())
	}
	sort.Strings(reasons)
	want := []string{"m@3: snapshot: digest mismatch", "m@4: snapshot: signed by a key that is not trusted", "m@5: trained on features"}
	if len(reasons) != 3 {
		t.Fatalf("refusals %q", reasons)
	}
	for i, w := range want {
		if !strings.HasPrefix(reasons[i], w) {
			t.Errorf("refusal %q, want it to start %q", reasons[i], w)
		}
	}
	publish(t, st, snap(t, key, names, 0))
	if m, _ = srv.Current(ctx); m.Name() != "m@6" {
		t.Fatalf("serving %s after a good m@6", m.Name())
	}
}

// An old snapshot copied into the store under a new version, or a new
// name, is refused: the name and version it was signed with are not where
// it is stored (issue: v000000000001-train-digits.snap copied to
// v000000000007-evilname.snap served as evilname@7).
func TestServerRefusesReplayedSnapshot(t *testing.T) {
	ctx := context.Background()
	st, ring := twoVersions(t)
	srv := infer.NewServer(st, ring, names, 0)
	if m, err := srv.Current(ctx); err != nil || m.Name() != "m@2" {
		t.Fatalf("serving %v (%v), want m@2", m, err)
	}
	old, err := os.ReadFile(filepath.Join(st.Root, "v000000000001-m.snap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"v000000000007-evilname.snap", "v000000000008-m.snap"} {
		if err := os.WriteFile(filepath.Join(st.Root, f), old, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(st.Root, "LATEST"), []byte(f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if m, err := srv.Current(ctx); err != nil || m.Name() != "m@2" {
			t.Fatalf("after %s: serving %v (%v), want m@2", f, m, err)
		}
	}
	var reasons []string
	for _, e := range refusals(srv) {
		if !errors.Is(e, snapshot.ErrMisplaced) {
			t.Errorf("refusal %v does not wrap ErrMisplaced", e)
		}
		reasons = append(reasons, e.Error())
	}
	sort.Strings(reasons)
	want := []string{"evilname@7: " + snapshot.ErrMisplaced.Error() + ": signed as m@1, stored as evilname@7",
		"m@8: " + snapshot.ErrMisplaced.Error() + ": signed as m@1, stored as m@8"}
	if !slices.Equal(reasons, want) {
		t.Errorf("refusals %q, want %q", reasons, want)
	}
	if _, err := infer.Load(ctx, st, modelstore.Version{Seq: 1, Name: "m", Path: filepath.Join(st.Root, "v000000000001-m.snap")}, ring, names); err != nil {
		t.Errorf("the original m@1 no longer loads: %v", err)
	}
}

func ed25519Key(t *testing.T) (string, []byte, error) {
	priv, _, err := snapshot.GenerateKey(t.TempDir(), "other")
	if err != nil {
		return "", nil, err
	}
	k, err := snapshot.LoadPrivateKey(priv)
	return priv, k, err
}

// refusals drains the server's refusals through a Check-free path: the
// exported Refused method.
func refusals(s *infer.Server) []error { return s.Refused() }

// makeBatches emits two batches of rows of dim features: row i has
// features (i, 10-i) and id t/0/i, labelled by the larger feature.
func makeBatches(dim int, emit func(arrowio.Batch)) {
	rb := arrowio.NewRowBuilder(memory.DefaultAllocator, dim)
	defer rb.Release()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i <= 10; i++ {
		f := []float64{float64(i), float64(10 - i)}
		f = append(f, make([]float64, dim-2)...)
		label := "y"
		if i >= 5 { // at 5 the features tie and the lower class wins
			label = "x"
		}
		rb.Append("dev", t0.Add(time.Duration(i)*time.Second), f, label, fmt.Sprintf("t/0/%d", i), records.Source{Topic: "t", Offset: int64(i)})
		if i == 5 {
			emit(rb.NewBatch())
		}
	}
	emit(rb.NewBatch())
}

// describe is a prediction's id, label and model, or a dead letter's
// stage, source and error.
func describe(r kafkaio.Record) string {
	if stage, ok := r.Header(kafkaio.HeaderStage); ok {
		e, _ := r.Header(kafkaio.HeaderError)
		return fmt.Sprintf("dead %s %s %s/%d/%d: %s", r.Topic, stage, r.Topic, r.Partition, r.Offset, e)
	}
	p, err := infer.ParsePrediction(r.Value)
	if err != nil {
		return "bad prediction: " + err.Error()
	}
	return fmt.Sprintf("%s %s %s %s truth %s %s", r.Topic, p.ID, p.Model, p.Label, p.Truth, string(r.Key))
}

// The pipeline scores every row with the served version, with ids of row
// and version, on its topic; rows of the wrong width go to the dead letter
// with stage inference and their source coordinates.
func TestBatches(t *testing.T) {
	st, key, pub := newStore(t)
	publish(t, st, snap(t, key, names, 0))
	p := infer.Params{Name: "t", Store: st.Root, Trust: []string{pub}, Names: names, Topic: "preds", SourceTopic: "src"}
	if _, err := infer.Check(context.Background(), p); err != nil {
		t.Fatal(err)
	}

	pipe, s := beam.NewPipelineWithRoot()
	batches := beam.ParDo(s, makeBatches, beam.Create(s, 2))
	preds, dead := infer.Batches(s, p, batches)
	var want []any
	for i := 0; i <= 10; i++ {
		label := "y"
		if i >= 5 { // at 5 the features tie and the lower class wins
			label = "x"
		}
		truth := label
		want = append(want, fmt.Sprintf("preds t/0/%d/m@1 m@1 %s truth %s dev", i, label, truth))
	}
	passert.Equals(s, beam.ParDo(s, describe, preds), want...)
	passert.Empty(s, dead)

	wide := beam.ParDo(s.Scope("wide"), makeBatches, beam.Create(s.Scope("wide"), 3))
	preds3, dead3 := infer.Batches(s.Scope("wide"), p, wide)
	passert.Empty(s, preds3)
	var wantDead []any
	for i := 0; i <= 10; i++ {
		wantDead = append(wantDead, fmt.Sprintf("dead t.dlq inference t.dlq/0/%d: rows of 3 features for m@1, which takes 2", i))
	}
	passert.Equals(s, beam.ParDo(s.Scope("wide"), describe, dead3), wantDead...)
	ptest.RunAndValidate(t, pipe)
}

// Check refuses an alert on a class the model does not have, and a store
// with nothing in it, before a job starts.
func TestCheck(t *testing.T) {
	st, key, pub := newStore(t)
	p := infer.Params{Name: "c", Store: st.Root, Trust: []string{pub}, Names: names, Topic: "x"}
	if _, err := infer.Check(context.Background(), p); !errors.Is(err, infer.ErrNoModel) {
		t.Fatalf("empty store: %v", err)
	}
	publish(t, st, snap(t, key, names, 0))
	p.Name, p.Alert = "c2", &infer.Alert{Label: "z", Threshold: 0.5}
	if _, err := infer.Check(context.Background(), p); err == nil || !strings.Contains(err.Error(), `"z"`) {
		t.Fatalf("alert on an unknown class: %v", err)
	}
	if _, err := os.Stat(st.Root); err != nil {
		t.Fatal(err)
	}
}

// A version refused while the pipeline runs leaves its reason in the
// branch's metrics, which the job's summary prints (issue 15 item 14).
func TestRefusalReasonInMetrics(t *testing.T) {
	st, key, pub := newStore(t)
	publish(t, st, snap(t, key, names, 0))
	publish(t, st, tampered(snap(t, key, names, 2)))
	p := infer.Params{Name: "why", Store: st.Root, Trust: []string{pub}, Names: names, Topic: "preds", SourceTopic: "src"}
	pipe, s := beam.NewPipelineWithRoot()
	preds, _ := infer.Batches(s, p, beam.ParDo(s, makeBatches, beam.Create(s, 2)))
	passert.Count(s, preds, "predictions", 11)
	res, err := ptest.RunWithMetrics(pipe)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == infer.Namespace("why") && strings.HasPrefix(c.Key.Name, infer.MetricModelsRefused+"/") {
			reasons = append(reasons, strings.TrimPrefix(c.Key.Name, infer.MetricModelsRefused+"/"))
		}
	}
	if len(reasons) != 1 || !strings.Contains(reasons[0], "m@2") && !strings.Contains(reasons[0], "v000000000002") {
		t.Fatalf("refusal reasons %q, want one naming version 2", reasons)
	}
	t.Logf("refused: %s", reasons[0])
}
