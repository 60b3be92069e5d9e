package infer

import (
	"context"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// Latencies (event time to prediction) are counted in a histogram of
// Beam counters, so that a job's percentiles come from its metrics
// rather than from reading its predictions back. Bucket i holds
// latencies in [base·g^(i-1), base·g^i) with g = 2^(1/16): a quantile
// read from the histogram is within 2.2 % of the exact one. Bucket 0
// holds everything below base (0.01 ms, and clock skew), the last
// everything from a year on.
const (
	latencyBase    = 10 * time.Microsecond
	latencyPerOct  = 16
	latencyBuckets = 1 + 42*latencyPerOct // 0.01 ms · 2^42 ≈ 1.4 years
	// LatencyCounter prefixes the counters of the histogram, one per
	// bucket: infer.<name>/latency_b<i>.
	LatencyCounter = "latency_b"
	// VersionCounter prefixes the counters of predictions per model
	// version: infer.<name>/predictions@<name@seq>.
	VersionCounter = "predictions@"
)

// latencyBucket is the bucket of latency d.
func latencyBucket(d time.Duration) int {
	if d < latencyBase {
		return 0
	}
	i := 1 + int(math.Floor(latencyPerOct*math.Log2(float64(d)/float64(latencyBase))))
	return min(i, latencyBuckets-1)
}

// bucketMs is the middle of bucket i (geometric), in milliseconds.
func bucketMs(i int) float64 {
	if i == 0 {
		return 0
	}
	lo := float64(latencyBase) * math.Pow(2, float64(i-1)/latencyPerOct)
	return lo * math.Pow(2, 0.5/latencyPerOct) / float64(time.Millisecond)
}

// latencyHist counts a batch's latencies per bucket, then adds them to
// the branch's counters.
type latencyHist struct {
	ns       string
	counters map[int]beam.Counter
	counts   map[int]int64
}

func (h *latencyHist) add(d time.Duration) {
	if h.counts == nil {
		h.counts = map[int]int64{}
	}
	h.counts[latencyBucket(d)]++
}

func (h *latencyHist) flush(ctx context.Context) {
	if h.counters == nil {
		h.counters = map[int]beam.Counter{}
	}
	for i, n := range h.counts {
		c, ok := h.counters[i]
		if !ok {
			c = beam.NewCounter(h.ns, LatencyCounter+strconv.Itoa(i))
			h.counters[i] = c
		}
		c.Inc(ctx, n)
	}
	clear(h.counts)
}

// LatencyQuantiles reads the q-quantiles (each in [0, 1]) of a branch's
// latencies, in milliseconds, from its histogram counters: counters maps
// a counter's name within the branch's namespace to its value. It
// returns zeros when there are none.
func LatencyQuantiles(counters map[string]int64, qs ...float64) []float64 {
	type bucket struct {
		i int
		n int64
	}
	var bs []bucket
	var total int64
	eachBucket(counters, func(i int, n int64) {
		bs = append(bs, bucket{i, n})
		total += n
	})
	out := make([]float64, len(qs))
	if total == 0 {
		return out
	}
	sort.Slice(bs, func(a, b int) bool { return bs[a].i < bs[b].i })
	for k, q := range qs {
		rank := max(1, int64(math.Ceil(q*float64(total)))) // nearest rank
		var seen int64
		for _, b := range bs {
			seen += b.n
			if seen >= rank {
				out[k] = bucketMs(b.i)
				break
			}
		}
	}
	return out
}

// LatencyHistogram folds a branch's latency histogram counters (as
// LatencyQuantiles takes them) into coarser buckets with upper bounds
// les, in seconds, ascending: the cumulative count at or below each (a
// fine bucket counts where its upper edge falls), the total count, and
// the sum of latencies in seconds (each at its bucket's middle). Fine
// buckets are narrower than 2.2 %, so the fold misplaces little.
func LatencyHistogram(counters map[string]int64, les []float64) (cum []uint64, count uint64, sum float64) {
	cum = make([]uint64, len(les))
	eachBucket(counters, func(i int, n int64) {
		upper := float64(latencyBase) * math.Pow(2, float64(i)/latencyPerOct) / float64(time.Second)
		for k, le := range les {
			if upper <= le*(1+1e-9) {
				cum[k] += uint64(n)
			}
		}
		count += uint64(n)
		sum += float64(n) * bucketMs(i) / 1000
	})
	return cum, count, sum
}

// eachBucket calls f with each histogram bucket's index and count among
// counters (named LatencyCounter + index), those with a count only.
func eachBucket(counters map[string]int64, f func(i int, n int64)) {
	for name, n := range counters {
		s, ok := strings.CutPrefix(name, LatencyCounter)
		if !ok || n <= 0 {
			continue
		}
		if i, err := strconv.Atoi(s); err == nil {
			f(i, n)
		}
	}
}
