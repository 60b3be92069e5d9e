package modelstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/io/modelstore"
)

// A store on Kafka keeps versions as a directory store does: numbered
// from 1, the newest published the latest, rejected ones apart with their
// reasons, a snapshot larger than one record in chunks read back whole,
// older versions pruned; and a second store value on the same topic (an
// edge device) sees it all.
func TestKafkaStore(t *testing.T) {
	b, err := embedded.Start(embedded.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	s := modelstore.Locate("kafka://models.digits", kafkaio.Plain(b.Addr()))
	if _, err := s.Latest(ctx); !errors.Is(err, modelstore.ErrEmpty) {
		t.Fatalf("latest of a new store: %v", err)
	}
	small := []byte("snapshot one")
	big := bytes.Repeat([]byte("0123456789abcdef"), (2*modelstore.ChunkBytes+1000)/16) // three records
	v1, err := s.Publish(ctx, "digits", modelstore.Bytes(bytes.NewReader(small)))
	if err != nil {
		t.Fatal(err)
	}
	seen := uint64(0)
	v2, err := s.Publish(ctx, "digits", func(seq uint64) (io.Reader, error) { seen = seq; return bytes.NewReader(big), nil })
	if err != nil {
		t.Fatal(err)
	}
	rej, err := s.(interface {
		Reject(context.Context, string, modelstore.Content, string) (modelstore.Version, error)
	}).Reject(ctx, "digits", modelstore.Bytes(bytes.NewReader(small)), "accuracy 0.5 below the gate's 0.9")
	if err != nil {
		t.Fatal(err)
	}
	if v1.Seq != 1 || v2.Seq != 2 || seen != 2 || rej.Seq != 3 || v2.Size != int64(len(big)) {
		t.Fatalf("versions %v %v (content made for %d) %v", v1, v2, seen, rej)
	}

	edge := modelstore.Locate("kafka://models.digits", kafkaio.Plain(b.Addr()))
	latest, err := edge.Latest(ctx)
	if err != nil || latest.Seq != 2 || latest.Name != "digits" {
		t.Fatalf("latest %v (%v), want digits@2: a rejected version is never the latest", latest, err)
	}
	rc, err := edge.Open(ctx, latest)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, want the %d written", len(got), len(big))
	}
	rs, err := edge.(*modelstore.Kafka).Rejected(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("rejected %v (%v)", rs, err)
	}
	if why, _ := modelstore.RejectReason(rs[0]); !strings.Contains(why, "below the gate") {
		t.Errorf("reason %q", why)
	}
	if err := edge.Prune(ctx, 1); err != nil {
		t.Fatal(err)
	}
	vs, err := s.List(ctx)
	if err != nil || len(vs) != 1 || vs[0].Seq != 2 {
		t.Fatalf("after pruning to 1: %v (%v)", vs, err)
	}
	v4, err := s.Publish(ctx, "digits", modelstore.Bytes(bytes.NewReader(small)))
	if err != nil || v4.Seq != 4 {
		t.Fatalf("the next version after a prune: %v (%v), want 4", v4, err)
	}
	if l, _ := edge.Latest(ctx); l.Seq != 4 {
		t.Errorf("latest %v after publishing 4", l)
	}
	if _, err := modelstore.Locate("kafka://bad topic", kafkaio.Plain(b.Addr())).Publish(ctx, "digits", modelstore.Bytes(bytes.NewReader(small))); err == nil {
		t.Error("a store on an invalid topic name published")
	}
}

// Publishers racing for the next number each end with a version of their
// own: the first writer of a number keeps it, the others take the next.
func TestKafkaStoreRacingPublishers(t *testing.T) {
	b, err := embedded.Start(embedded.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	const n = 4
	seqs := make(chan uint64, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			s := modelstore.Locate("kafka://models.race", kafkaio.Plain(b.Addr()))
			v, err := s.Publish(ctx, "m", modelstore.Bytes(strings.NewReader("x")))
			seqs <- v.Seq
			errs <- err
		}()
	}
	got := map[uint64]bool{}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		got[<-seqs] = true
	}
	vs, err := modelstore.Locate("kafka://models.race", kafkaio.Plain(b.Addr())).List(ctx)
	if len(got) != n || err != nil || len(vs) != n {
		t.Fatalf("%d publishers got versions %v; the store lists %v (%v)", n, got, vs, err)
	}
}
