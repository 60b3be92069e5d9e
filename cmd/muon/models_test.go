package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/snapshot"
)

// keygen, then verify and inspect a signed snapshot; a tampered copy and
// a snapshot from an untrusted key are refused with their reasons.
func TestModelsCommand(t *testing.T) {
	dir := t.TempDir()
	keys, others := filepath.Join(dir, "keys"), filepath.Join(dir, "others")
	if code, out, errs := runMuon(t, "models", "keygen", "--dir", keys, "--name", "ci"); code != 0 || !strings.Contains(out, "ci.key") {
		t.Fatalf("keygen exited %d: %s%s", code, out, errs)
	}
	if code, _, errs := runMuon(t, "models", "keygen", "--dir", keys, "--name", "ci"); code == 0 || !strings.Contains(errs, "exists") {
		t.Fatalf("keygen over an existing key exited %d: %s", code, errs)
	}
	if code, _, _ := runMuon(t, "models", "keygen", "--dir", others, "--name", "stranger"); code != 0 {
		t.Fatal("second keygen failed")
	}
	write := func(keyFile, name string, version uint64) string {
		key, err := snapshot.LoadPrivateKey(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		m := snapshot.Manifest{Name: "digits", Version: version, Model: models.Desc{Kind: models.Softmax, Inputs: 2, Classes: 2}, Labels: []string{"a", "b"},
			Metrics:     map[string]models.Metrics{"test": {N: 10, Accuracy: 0.9, BalancedAccuracy: 0.9}},
			Compression: snapshot.Compression{Weights: "float32"},
			Lineage:     snapshot.Lineage{Sources: []snapshot.Source{{Kind: "kafka", Topic: "digits", Partition: 0, From: 0, To: 10}}, Created: time.Now()}}
		ts := []snapshot.Tensor{{Name: "w", Shape: []int{2, 2}, DType: snapshot.Float32, F32: []float32{1, 2, 3, 4}},
			{Name: "b", Shape: []int{2}, DType: snapshot.Float32, F32: []float32{0, 0}}}
		var buf bytes.Buffer
		if err := snapshot.Write(&buf, m, ts, key); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write(filepath.Join(keys, "ci.key"), "good.snap", 1)
	stranger := write(filepath.Join(others, "stranger.key"), "stranger.snap", 1)
	b, _ := os.ReadFile(good)
	b[len(b)-3] ^= 0x10
	tampered := filepath.Join(dir, "tampered.snap")
	if err := os.WriteFile(tampered, b, 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, _ := runMuon(t, "models", "inspect", "--trust", keys, good)
	if code != 0 {
		t.Fatalf("inspect exited %d:\n%s", code, out)
	}
	for _, want := range []string{"verified", "softmax", "float32", "labels        a, b", "accuracy 0.9000", "kafka digits[0] offsets 0–9 (10 records)"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runMuon(t, "models", "verify", "--trust", filepath.Join(keys, "ci.pub"), good, tampered, stranger)
	if code != 1 || !strings.Contains(out, "ok       "+good) || !strings.Contains(out, "REFUSED  "+tampered+": snapshot: digest mismatch") ||
		!strings.Contains(out, "REFUSED  "+stranger+": snapshot: signed by a key that is not trusted") {
		t.Fatalf("verify exited %d:\n%s", code, out)
	}
	code, out, errs := runMuon(t, "models", "inspect", "--trust", keys, tampered)
	if code != 1 || !strings.Contains(out, "not verified") || !strings.Contains(errs, "digest mismatch") {
		t.Fatalf("inspect of a tampered file exited %d:\n%s%s", code, out, errs)
	}
	if code, _, errs := runMuon(t, "models", "verify", good); code != 2 || !strings.Contains(errs, "--trust") {
		t.Fatalf("verify without --trust exited %d: %s", code, errs)
	}

	// A store whose latest version is corrupt: list says so and marks the
	// previous version as the one serving.
	store := &modelstore.Dir{Root: filepath.Join(dir, "store")}
	for _, f := range []string{good, tampered} {
		b, _ := os.ReadFile(f)
		if _, err := store.Publish(context.Background(), "digits", modelstore.Bytes(bytes.NewReader(b))); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs = runMuon(t, "models", "list", "--store", store.Root, "--trust", keys)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.Contains(lines[0], "digits@1") || !strings.Contains(lines[0], "verified, serving") ||
		!strings.Contains(lines[1], "latest, REFUSED: snapshot: digest mismatch") {
		t.Fatalf("list exited %d:\n%s%s", code, out, errs)
	}

	// digits@1 copied to a new name and version, as a replay of an old
	// model would: refused by verify and list, digits@1 still serving.
	first, err := os.ReadFile(filepath.Join(store.Root, "v000000000001-digits.snap"))
	if err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(store.Root, "v000000000007-evilname.snap")
	if err := os.WriteFile(evil, first, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store.Root, "LATEST"), []byte("v000000000007-evilname.snap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	misplaced := "snapshot: stored under another name or version than it was signed with: signed as digits@1, stored as evilname@7"
	code, out, _ = runMuon(t, "models", "verify", "--trust", keys, evil)
	if code != 1 || !strings.Contains(out, "REFUSED  "+evil+": "+misplaced) {
		t.Fatalf("verify of a replayed snapshot exited %d:\n%s", code, out)
	}
	code, out, errs = runMuon(t, "models", "list", "--store", store.Root, "--trust", keys)
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.Contains(lines[0], "verified, serving") || !strings.Contains(lines[2], "evilname@7") ||
		!strings.Contains(lines[2], "latest, REFUSED: "+misplaced) {
		t.Fatalf("list with a replayed snapshot exited %d:\n%s%s", code, out, errs)
	}
}
