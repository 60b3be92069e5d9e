package modelstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func publish(t *testing.T, d *Dir, name, content string) Version {
	t.Helper()
	v, err := d.Publish(context.Background(), name, Bytes(strings.NewReader(content)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func read(t *testing.T, d *Dir, v Version) string {
	t.Helper()
	rc, err := d.Open(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPublishListLatest(t *testing.T) {
	ctx := context.Background()
	d := &Dir{Root: t.TempDir()}
	if _, err := d.Latest(ctx); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty store: %v", err)
	}
	v1 := publish(t, d, "digits", "one")
	v2 := publish(t, d, "digits", "two")
	sum := sha256.Sum256([]byte("two"))
	if v1.Seq != 1 || v2.Seq != 2 || v2.Size != 3 || v2.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("versions %+v, %+v", v1, v2)
	}
	// Sequence numbers continue in a new handle on the same directory.
	v3 := publish(t, &Dir{Root: d.Root}, "engines", "three")
	if v3.Seq != 3 {
		t.Fatalf("third version is %d", v3.Seq)
	}
	latest, err := d.Latest(ctx)
	if err != nil || latest.Seq != 3 || read(t, d, latest) != "three" {
		t.Fatalf("latest %+v (%v)", latest, err)
	}
	vs, err := d.List(ctx)
	if err != nil || len(vs) != 3 || vs[0].Seq != 1 || vs[2].Name != "engines" {
		t.Fatalf("list %+v (%v)", vs, err)
	}
	for _, bad := range []string{"", "a/b", "..", ".hidden", strings.Repeat("x", 200)} {
		if _, err := d.Publish(ctx, bad, Bytes(strings.NewReader("x"))); !errors.Is(err, ErrName) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
}

func TestRejectAndPrune(t *testing.T) {
	ctx := context.Background()
	d := &Dir{Root: t.TempDir()}
	for i := range 5 {
		publish(t, d, "m", fmt.Sprint(i))
	}
	r, err := d.Reject(ctx, "m", Bytes(strings.NewReader("bad")), "accuracy 0.91 below the gate 0.95")
	if err != nil {
		t.Fatal(err)
	}
	if reason, err := RejectReason(r); err != nil || !strings.Contains(reason, "below the gate") {
		t.Fatalf("reason %q (%v)", reason, err)
	}
	if latest, _ := d.Latest(ctx); latest.Seq != 5 {
		t.Fatalf("a rejection moved latest to %d", latest.Seq)
	}
	if v := publish(t, d, "m", "after"); v.Seq != 7 {
		t.Fatalf("after a rejection (6), the next version is %d", v.Seq)
	}
	if err := d.Prune(ctx, 2); err != nil {
		t.Fatal(err)
	}
	vs, _ := d.List(ctx)
	if len(vs) != 2 || vs[0].Seq != 5 || vs[1].Seq != 7 {
		t.Fatalf("after pruning to 2: %+v", vs)
	}
	rej, _ := d.Rejected(ctx)
	if len(rej) != 1 || rej[0].Seq != 6 {
		t.Fatalf("rejected %+v", rej)
	}
}

// A publish that fails after its file is renamed leaves LATEST where it
// was; the orphan is listed but LatestVerified never reaches past LATEST.
func TestFailureBeforeThePointer(t *testing.T) {
	ctx := context.Background()
	d := &Dir{Root: t.TempDir()}
	publish(t, d, "m", "good")
	d.afterRename = func() error { return errors.New("disk gone") }
	_, err := d.Publish(ctx, "m", Bytes(strings.NewReader("new")))
	d.afterRename = nil
	if err == nil {
		t.Fatal("publish succeeded")
	}
	latest, err := d.Latest(ctx)
	if err != nil || latest.Seq != 1 || read(t, d, latest) != "good" {
		t.Fatalf("latest %+v (%v)", latest, err)
	}
	v, skipped, err := LatestVerified(ctx, d, func(Version, io.Reader) error { return nil })
	if err != nil || v.Seq != 1 || len(skipped) != 0 {
		t.Fatalf("latest verified %+v, %v (%v)", v, skipped, err)
	}
}

// A corrupt newest version leaves the previous one serving.
func TestLatestVerifiedSkipsCorrupt(t *testing.T) {
	ctx := context.Background()
	d := &Dir{Root: t.TempDir()}
	publish(t, d, "m", "good 1")
	publish(t, d, "m", "good 2")
	publish(t, d, "m", "corrupt")
	verify := func(_ Version, r io.Reader) error {
		b, _ := io.ReadAll(r)
		if bytes.Contains(b, []byte("corrupt")) {
			return errors.New("digest mismatch")
		}
		return nil
	}
	v, skipped, err := LatestVerified(ctx, d, verify)
	if err != nil || v.Seq != 2 || len(skipped) != 1 || !strings.Contains(skipped[0].Error(), "digest mismatch") {
		t.Fatalf("latest verified %+v, skipped %v (%v)", v, skipped, err)
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := &Dir{Root: t.TempDir()}
	publish(t, d, "m", "1")
	ch := Watch(ctx, d, 10*time.Millisecond)
	if v := <-ch; v.Seq != 1 {
		t.Fatalf("first version seen %d", v.Seq)
	}
	publish(t, d, "m", "2")
	select {
	case v := <-ch:
		if v.Seq != 2 {
			t.Fatalf("new version seen %d", v.Seq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not notice version 2")
	}
	cancel()
	for range ch {
	}
}

// blockingReader gives n bytes, then blocks forever: a publish stuck
// halfway.
type blockingReader struct{ n int }

func (b *blockingReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		select {}
	}
	k := min(len(p), b.n)
	b.n -= k
	return k, nil
}

// TestHelperProcess publishes to MUON_STORE from a reader that stops
// halfway; the parent test kills it.
func TestHelperProcess(t *testing.T) {
	root := os.Getenv("MUON_STORE")
	if root == "" {
		t.Skip("helper process for TestPublishKilledHalfway")
	}
	d := &Dir{Root: root}
	_, _ = d.Publish(context.Background(), "m", Bytes(&blockingReader{n: 1 << 20}))
}

// A publisher killed by a signal halfway through leaves LATEST on the
// previous version, whose bytes are intact, and the store takes the next
// publish.
func TestPublishKilledHalfway(t *testing.T) {
	ctx := context.Background()
	d := &Dir{Root: t.TempDir()}
	old := publish(t, d, "m", "the previous model")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "MUON_STORE="+d.Root)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the helper has written into its temporary file.
	deadline := time.Now().Add(30 * time.Second)
	for {
		tmps, _ := filepath.Glob(filepath.Join(d.Root, ".tmp-*"))
		if len(tmps) > 0 {
			if st, err := os.Stat(tmps[0]); err == nil && st.Size() > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the helper never started writing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	latest, err := d.Latest(ctx)
	if err != nil || latest.Seq != old.Seq || read(t, d, latest) != "the previous model" {
		t.Fatalf("after the kill, latest is %+v (%v)", latest, err)
	}
	vs, _ := d.List(ctx)
	if len(vs) != 1 {
		t.Fatalf("the half-written publish is listed: %+v", vs)
	}
	next := publish(t, d, "m", "the next model")
	if next.Seq != 2 {
		t.Fatalf("next version %d", next.Seq)
	}
	// The next publish removed the killed one's temporary file: nothing
	// is left behind forever.
	if tmps, _ := filepath.Glob(filepath.Join(d.Root, ".tmp-*")); len(tmps) != 0 {
		t.Fatalf("the next publish left %v", tmps)
	}
}

func BenchmarkPublish1MiB(b *testing.B) {
	d := &Dir{Root: b.TempDir()}
	data := bytes.Repeat([]byte{7}, 1<<20)
	b.SetBytes(int64(len(data)))
	for range b.N {
		if _, err := d.Publish(context.Background(), "m", Bytes(bytes.NewReader(data))); err != nil {
			b.Fatal(err)
		}
	}
}

// A missing or dangling LATEST pointer does not leave a store with good
// versions serving nothing: the newest that verifies serves, and what was
// wrong with the pointer is said first.
func TestBrokenPointerServesNewestVerified(t *testing.T) {
	ctx := context.Background()
	verify := func(_ Version, r io.Reader) error {
		b, _ := io.ReadAll(r)
		if string(b) == "bad" {
			return errors.New("corrupt")
		}
		return nil
	}
	for _, tt := range []struct {
		name    string
		breakIt func(d *Dir) error
		want    string
	}{
		{"no pointer", func(d *Dir) error { return os.Remove(filepath.Join(d.Root, latestFile)) }, "no LATEST pointer"},
		{"dangling pointer", func(d *Dir) error {
			return os.WriteFile(filepath.Join(d.Root, latestFile), []byte("v000000000009-m.snap\n"), 0o644)
		}, "v000000000009-m.snap"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &Dir{Root: t.TempDir()}
			publish(t, d, "m", "good")
			publish(t, d, "m", "newer")
			publish(t, d, "m", "bad")
			if err := tt.breakIt(d); err != nil {
				t.Fatal(err)
			}
			v, skipped, err := LatestVerified(ctx, d, verify)
			if err != nil || v.Seq != 2 || read(t, d, v) != "newer" {
				t.Fatalf("serving %+v (%v), want version 2", v, err)
			}
			if len(skipped) != 2 || !strings.Contains(skipped[0].Error(), tt.want) || !strings.Contains(skipped[1].Error(), "corrupt") {
				t.Errorf("skipped %v, want the pointer's problem (%q), then the corrupt version", skipped, tt.want)
			}
		})
	}
	empty := &Dir{Root: t.TempDir()}
	if _, _, err := LatestVerified(ctx, empty, verify); !errors.Is(err, ErrEmpty) {
		t.Errorf("an empty store: %v, want ErrEmpty", err)
	}
}

// Content is made once the version is chosen, and told its number, so a
// snapshot can sign where it is stored; a failure to make it publishes
// nothing.
func TestContentKnowsItsVersion(t *testing.T) {
	ctx := context.Background()
	d := &Dir{Root: t.TempDir()}
	numbered := func(seq uint64) (io.Reader, error) { return strings.NewReader(fmt.Sprintf("I am %d", seq)), nil }
	for want := uint64(1); want <= 3; want++ {
		pub := d.Publish
		if want == 2 {
			pub = func(ctx context.Context, name string, c Content) (Version, error) {
				return d.Reject(ctx, name, c, "gate")
			}
		}
		v, err := pub(ctx, "m", numbered)
		if err != nil || v.Seq != want || read(t, d, v) != fmt.Sprintf("I am %d", want) {
			t.Fatalf("version %+v (%v), want %d saying so", v, err, want)
		}
	}
	failing := func(uint64) (io.Reader, error) { return nil, errors.New("no space for the tensors") }
	if _, err := d.Publish(ctx, "m", failing); err == nil || !strings.Contains(err.Error(), "no space for the tensors") {
		t.Errorf("a failing content: %v", err)
	}
	if v, err := d.Latest(ctx); err != nil || v.Seq != 3 {
		t.Errorf("latest %+v (%v) after a failed publish, want 3", v, err)
	}
}
