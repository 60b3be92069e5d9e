package train

import (
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/records"
)

// Rows land on the shard their id says, however they were batched, with
// every column intact.
func TestShardFnSpreadsRowsByID(t *testing.T) {
	const rows, shards = 300, 3
	batchOf := func(lo, hi int) arrowio.Batch {
		rb := arrowio.NewRowBuilder(memory.DefaultAllocator, 2)
		defer rb.Release()
		for i := lo; i < hi; i++ {
			label := fmt.Sprint(i % 4)
			if i%10 == 0 {
				label = "" // null
			}
			rb.Append(fmt.Sprintf("dev%d", i%5), time.UnixMilli(int64(1000*i)), []float64{float64(i), -float64(i)}, label, fmt.Sprintf("row-%03d", i), records.Source{Topic: "t", Partition: i % 3, Offset: int64(i)})
		}
		return rb.NewBatch()
	}
	// shard → row lines, for two ways of batching the same rows.
	split := func(bounds []int) map[int][]string {
		got := map[int][]string{}
		fn := &shardFn{Shards: shards}
		for k := 0; k+1 < len(bounds); k++ {
			err := fn.ProcessElement(batchOf(bounds[k], bounds[k+1]), func(sh int, b arrowio.Batch) {
				vals, n, dim, err := arrowio.Features(b.Record)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					label := "null"
					if l := b.Record.Column(arrowio.LabelIndex); l.IsValid(i) {
						label = l.ValueStr(i)
					}
					got[sh] = append(got[sh], fmt.Sprintf("%s %s %s %v %s %+v", b.Record.Column(arrowio.IDIndex).ValueStr(i),
						b.Record.Column(arrowio.KeyIndex).ValueStr(i), b.Record.Column(arrowio.TimeIndex).ValueStr(i), vals[i*dim:(i+1)*dim], label,
						arrowio.SourceAt(b.Record, i)))
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range got {
			sort.Strings(l)
		}
		return got
	}
	one, many := split([]int{0, rows}), split([]int{0, 7, 100, 101, 250, rows})
	if !reflect.DeepEqual(one, many) {
		t.Fatalf("shards depend on batching:\n%v\n%v", one, many)
	}
	total := 0
	for sh, l := range one {
		if len(l) < rows/shards/2 {
			t.Errorf("shard %d has %d of %d rows", sh, len(l), rows)
		}
		total += len(l)
	}
	if len(one) != shards || total != rows {
		t.Errorf("%d shards, %d rows; want %d and %d", len(one), total, shards, rows)
	}
	if l := one[shardOf("row-010", shards)]; !contains(l, "row-010 dev0 1970-01-01 00:00:10Z [10 -10] null {Topic:t Partition:1 Offset:10}") {
		t.Errorf("row-010 not intact on its shard: %v", l[:3])
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
