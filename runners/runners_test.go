package runners

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Kind
		err  bool
	}{
		{"edge", Edge, false},
		{"direct", Edge, false},
		{"prism", Edge, false},
		{" Edge ", Edge, false},
		{"", Edge, false},
		{"flink", Flink, false},
		{"FLINK", Flink, false},
		{"spark", "", true},
		{"dataflow", "", true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("Parse(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if err != nil && (!errors.Is(err, ErrUnknownRunner) || !strings.Contains(err.Error(), "edge")) {
			t.Errorf("Parse(%q) error %q does not say what to use", tt.in, err)
		}
	}
}

func TestFlinkNeedsAnEndpoint(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	_ = beam.Create(s, 1)
	_, err := Run(context.Background(), p, Options{Kind: Flink})
	if err == nil || !strings.Contains(err.Error(), "--endpoint") {
		t.Errorf("flink without endpoint: %v, want an error naming --endpoint", err)
	}
}

// A bundle that fails while the runner asks for its progress fails the
// job: the edge runner once committed such a bundle as if it had succeeded.
func TestEdgeSlowBundleFailureFailsTheJob(t *testing.T) {
	for i := 0; i < 3; i++ {
		p, s := beam.NewPipelineWithRoot()
		beam.ParDo0(s, &slowFailFn{}, beam.Create(s, 1))
		_, err := Run(context.Background(), p, Options{Kind: Edge})
		if err == nil || !strings.Contains(err.Error(), errSlowFail.Error()) {
			t.Fatalf("run %d: error %v, want the bundle's failure", i, err)
		}
	}
}

func TestEdgeRunCollectsCounters(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, &countFn{}, beam.Create(s, 1, 2, 3))
	res, err := Run(context.Background(), p, Options{Kind: Edge})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Counter("runners_test", "seen"); got != 3 {
		t.Errorf("counter runners_test/seen = %d, want 3 (counters %v)", got, res.CounterNames())
	}
	if res.Elapsed <= 0 || res.JobID == "" {
		t.Errorf("result %+v lacks a job id or elapsed time", res)
	}
}

// Every edge job used to leave an empty beamloopbackworker-* file in the
// temporary directory (third_party/beam/loopback-tempfile.patch).
func TestEdgeRunLeavesNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, &countFn{}, beam.Create(s, 1, 2, 3))
	if _, err := Run(context.Background(), p, Options{Kind: Edge}); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("the job left %s in $TMPDIR", e.Name())
	}
}

func TestUnder(t *testing.T) {
	r := &Result{Counters: map[string]int64{"count/devices.label.walk": 2, "count/devices.label.run": 1, "count/devices": 3, "other/devices.label.x": 9}}
	got := r.Under("count", "devices.label.")
	if len(got) != 2 || got["walk"] != 2 || got["run"] != 1 {
		t.Errorf("Under = %v, want walk 2 and run 1", got)
	}
	if n := len(r.Under("none", "")); n != 0 {
		t.Errorf("Under of an unused namespace has %d counters", n)
	}
}

func TestCondensePutsTheCauseFirst(t *testing.T) {
	report := errors.New("job job-001 failed:\nbundle inst001 stage-001 failed:process bundle failed for instruction inst001 using plan stage-001 : while executing FinishBundle for Plan[stage-001]:\n" +
		"1: DataSource[S[stage-001_source@127.0.0.1:41105], i0] Out:4 Coder:W;cwv_n1<bytes;c0>!GWC \n2: ParDo[kafkaio.writeFn] Out:[] Sig: func(int), SideInputs: []\n\tcaused by:\n" +
		"DoFn[UID:2, PID:e3, Name: github.com/muonml/muon/io/kafkaio.writeFn] failed:\nkafkaio.Write to [127.0.0.1:1]: writing 3 records: broken pipe")
	got := condense(report, false).Error()
	want := "failed in kafkaio.writeFn (FinishBundle): kafkaio.Write to [127.0.0.1:1]: writing 3 records: broken pipe (--verbose adds the runner's whole report)"
	if got != want {
		t.Errorf("condensed:\n%s\nwant\n%s", got, want)
	}
	if !errors.Is(condense(report, false), report) {
		t.Error("the condensed error does not wrap the report")
	}
	if v := condense(report, true).Error(); !strings.HasPrefix(v, "failed in kafkaio.writeFn (FinishBundle): kafkaio.Write") || !strings.Contains(v, "DataSource[") {
		t.Errorf("verbose: %s", v)
	}
	plain := errors.New("job server unreachable")
	if condense(plain, false) != plain {
		t.Error("an error without a plan changed")
	}
}

// The edge runner reports a job's metrics while it runs: the bundle that
// counted is still open when Live sees its count.
func TestEdgeLiveMetrics(t *testing.T) {
	liveRelease = make(chan struct{})
	var once sync.Once
	var calls atomic.Int64
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, &countThenWaitFn{}, beam.Create(s, 1))
	res, err := Run(context.Background(), p, Options{Kind: Edge, JobName: "live-test", LiveEvery: 50 * time.Millisecond, Live: func(r *Result) {
		calls.Add(1)
		if r.Counter("runners_test", "live") == 5 && r.Gauges["runners_test/level"] == 42 {
			once.Do(func() { close(liveRelease) })
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Counter("runners_test", "live"); got != 5 {
		t.Errorf("final count %d, want 5", got)
	}
	if calls.Load() == 0 {
		t.Error("Live was never called")
	}
}

// Cancelling the context of a bounded edge job cancels it on the runner:
// Run returns while the job's DoFn still holds its bundle.
func TestEdgeCancel(t *testing.T) {
	blockStarted, blockRelease = make(chan struct{}, 1), make(chan struct{})
	defer close(blockRelease)
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, &blockFn{}, beam.Create(s, 1))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-blockStarted
		cancel()
	}()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, p, Options{Kind: Edge})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a cancelled job succeeded")
		}
	case <-time.After(time.Minute):
		t.Fatal("a cancelled job still ran after a minute")
	}
}
