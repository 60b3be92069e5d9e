package infer

import (
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"
	"time"
)

// Quantiles read from the histogram are within 2.2 % of the exact ones,
// over latencies from microseconds to hours.
func TestLatencyQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, spread := range []float64{1, 4, 12} {
		var lat []time.Duration
		h := latencyHist{}
		for i := 0; i < 50_000; i++ {
			d := time.Duration(float64(time.Millisecond) * math.Exp(rng.NormFloat64()*spread))
			lat = append(lat, d)
			h.add(d)
		}
		counters := map[string]int64{"rows": 50_000}
		for i, n := range h.counts {
			counters[LatencyCounter+strconv.Itoa(i)] = n
		}
		sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
		qs := []float64{0.01, 0.5, 0.9, 0.99, 1}
		got := LatencyQuantiles(counters, qs...)
		for k, q := range qs {
			exact := float64(lat[max(0, int(math.Ceil(q*float64(len(lat))))-1)]) / float64(time.Millisecond)
			if exact < 0.01 || exact >= 0.01*math.Exp2(42) {
				continue // bucket 0 and the last: beyond the histogram's range
			}
			if rel := math.Abs(got[k]-exact) / exact; rel > 0.022 {
				t.Errorf("spread %v: q%.2f = %.4g ms from the histogram, %.4g ms exact (%.1f%% off)", spread, q, got[k], exact, 100*rel)
			}
		}
	}
}

func TestLatencyBuckets(t *testing.T) {
	if latencyBucket(-time.Second) != 0 || latencyBucket(0) != 0 || latencyBucket(9*time.Microsecond) != 0 {
		t.Error("latencies below 0.01 ms (and clock skew) go to bucket 0")
	}
	if latencyBucket(10*time.Microsecond) != 1 || latencyBucket(100*time.Hour*24*365) != latencyBuckets-1 {
		t.Error("edges")
	}
	prev := 0
	for d := 10 * time.Microsecond; d < 365*24*time.Hour; d = d * 21 / 20 {
		b := latencyBucket(d)
		if b < prev {
			t.Fatalf("bucket of %v is %d, below %d", d, b, prev)
		}
		if mid := bucketMs(b); math.Abs(mid-float64(d)/1e6)/(float64(d)/1e6) > 0.022 {
			t.Fatalf("%v in bucket %d, middle %.4g ms", d, b, mid)
		}
		prev = b
	}
	if q := LatencyQuantiles(map[string]int64{"rows": 3}, 0.5); q[0] != 0 {
		t.Error("no histogram: zero")
	}
}
