package pipelines

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/message"
	"github.com/muonml/muon/transforms/decode"
)

func init() {
	register.Function1x2(readingStats)
	register.Function1x2(imageStats)
	register.Function2x1(mergeStats)
	register.Function3x1(windowedCountRecord)
	register.DoFn3x1[context.Context, int, func(*DeviceStats) bool, error](&writeCountsFn{})
	register.Iter1[DeviceStats]()
	register.Function2x1(withDevice)
}

// DeviceStats summarises what one device sent.
type DeviceStats struct {
	Device  string
	Records int64
	First   int64 // event time, unix ms
	Last    int64
	Label   string // the first label seen
}

func readingStats(r decode.Reading) (string, DeviceStats) {
	ms := r.Time.UnixMilli()
	return r.Device, DeviceStats{Device: r.Device, Records: 1, First: ms, Last: ms, Label: r.Label}
}

func imageStats(im decode.Image) (string, DeviceStats) {
	ms := im.Time.UnixMilli()
	return im.Device, DeviceStats{Device: im.Device, Records: 1, First: ms, Last: ms, Label: im.Label}
}

func mergeStats(a, b DeviceStats) DeviceStats {
	if a.Records == 0 {
		return b
	}
	if b.Records == 0 {
		return a
	}
	out := a
	out.Records += b.Records
	out.First = min(a.First, b.First)
	out.Last = max(a.Last, b.Last)
	if out.Label == "" {
		out.Label = b.Label
	}
	return out
}

func withDevice(_ string, st DeviceStats) DeviceStats { return st }

// Options are what a job needs besides its spec.
type Options struct {
	// Brokers are the resolved bootstrap brokers (the embedded broker's
	// address when the spec names none).
	Brokers []string
	// StopFile stops an unbounded source when it appears.
	StopFile string
	// Until stops an unbounded source at this wall time.
	Until time.Time
	// Version is muon's version, for the lineage of snapshots.
	Version string
}

// sourceParams is SourceParams with the stop conditions of an unbounded read.
func (o Options) sourceParams(spec *configs.Spec) kafkaio.Params {
	rp := SourceParams(spec, o.Brokers)
	if rp.Unbounded {
		rp.StopFile = o.StopFile
		rp.Until = o.Until
	}
	return rp
}

// SourceParams maps a spec's source section onto kafkaio.Params.
func SourceParams(spec *configs.Spec, brokers []string) kafkaio.Params {
	src := spec.Source
	p := kafkaio.Params{
		Brokers:            brokers,
		Topics:             src.Topics,
		Unbounded:          !src.IsBounded(),
		CheckpointRecords:  src.CheckpointRecords,
		CheckpointInterval: src.CheckpointInterval.D(),
		IdleTimeout:        src.IdleTimeout.D(),
		BatchRecords:       src.BatchRecords,
		FetchMaxBytes:      src.FetchMaxBytes,
		FetchConns:         src.FetchConns,
	}
	switch src.Start {
	case "latest":
		p.Start.Kind = kafkaio.StartLatest
	case "offsets":
		p.Start = kafkaio.Start{Kind: kafkaio.StartOffsets, Offsets: src.Offsets}
	case "timestamp":
		p.Start = kafkaio.Start{Kind: kafkaio.StartTime, Time: src.Time}
	}
	return p
}

// DecodeParams maps a spec's decode section onto decode.Params.
func DecodeParams(spec *configs.Spec) decode.Params {
	d := spec.Decode
	return decode.Params{
		MaxBytes:         d.MaxBytes,
		Image:            message.ImageLimits{MaxWidth: d.MaxWidth, MaxHeight: d.MaxHeight, MaxPixels: d.MaxPixels},
		DeadLetterSuffix: d.DeadLetterSuffix,
	}
}

// CountsFile is where a bounded ingest job writes its per-device counts.
func CountsFile(spec *configs.Spec) string {
	return filepath.Join(spec.Output.Dir, "device-counts.csv")
}

// CountsTopic is where an unbounded ingest job writes per-device counts,
// one JSON record per device and minute of event time.
func CountsTopic(spec *configs.Spec) string { return spec.Name + ".counts" }

// Ingest builds the ingest job into s: read the source topics, decode,
// write dead letters to <topic><suffix>, and count records per device —
// into CountsFile for bounded reads, into CountsTopic per event-time minute
// for unbounded ones.
func Ingest(s beam.Scope, spec *configs.Spec, o Options) {
	s = s.Scope("pipelines.Ingest")
	rp := o.sourceParams(spec)
	batches := kafkaio.ReadBatches(s, rp)

	var keyed, dead beam.PCollection
	switch spec.Source.Format {
	case "image":
		var images beam.PCollection
		images, dead = decode.Images(s, DecodeParams(spec), batches)
		keyed = beam.ParDo(s, imageStats, images)
	default:
		var readings beam.PCollection
		readings, dead = decode.Sensors(s, DecodeParams(spec), batches)
		keyed = beam.ParDo(s, readingStats, readings)
	}
	kafkaio.Write(s.Scope("DeadLetters"), kafkaio.WriteParams{Brokers: o.Brokers}, dead)

	if rp.Unbounded {
		windowed := beam.WindowInto(s, window.NewFixedWindows(time.Minute), keyed)
		counts := beam.CombinePerKey(s, mergeStats, windowed)
		recs := beam.ParDo(s, &windowedCountFn{Topic: CountsTopic(spec)}, counts)
		kafkaio.Write(s.Scope("Counts"), kafkaio.WriteParams{Brokers: o.Brokers}, recs)
		return
	}
	counts := beam.ParDo(s, withDevice, beam.CombinePerKey(s, mergeStats, keyed))
	grouped := beam.GroupByKey(s, beam.AddFixedKey(s, counts))
	beam.ParDo0(s, &writeCountsFn{Path: CountsFile(spec)}, grouped)
}

// windowedCountFn renders one device's counts in one window as a record.
type windowedCountFn struct {
	Topic string
}

func init() {
	register.DoFn4x0[beam.Window, string, DeviceStats, func(kafkaio.Record)](&windowedCountFn{})
}

func (fn *windowedCountFn) ProcessElement(w beam.Window, device string, st DeviceStats, emit func(kafkaio.Record)) {
	emit(windowedCountRecord(fn.Topic, w, st))
}

func windowedCountRecord(topic string, w beam.Window, st DeviceStats) kafkaio.Record {
	end := w.MaxTimestamp().ToTime().Add(time.Millisecond).UTC()
	start := end.Add(-time.Minute)
	v := fmt.Sprintf(`{"device":%s,"window_start":%q,"window_end":%q,"records":%d,"label":%s}`,
		strconv.Quote(st.Device), start.Format(time.RFC3339), end.Format(time.RFC3339), st.Records, strconv.Quote(st.Label))
	return kafkaio.Record{Topic: topic, Key: []byte(st.Device), Value: []byte(v), Time: end}
}

// writeCountsFn writes all device counts to one CSV file, sorted by
// device, through a temporary file and a rename so a reader never sees half
// a file.
type writeCountsFn struct {
	Path string
}

func (fn *writeCountsFn) ProcessElement(_ context.Context, _ int, iter func(*DeviceStats) bool) error {
	var all []DeviceStats
	var st DeviceStats
	for iter(&st) {
		all = append(all, st)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Device < all[j].Device })
	if err := os.MkdirAll(filepath.Dir(fn.Path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(fn.Path), ".device-counts-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := csv.NewWriter(tmp)
	_ = w.Write([]string{"device", "records", "first", "last", "label"})
	for _, d := range all {
		_ = w.Write([]string{d.Device, strconv.FormatInt(d.Records, 10),
			time.UnixMilli(d.First).UTC().Format(time.RFC3339Nano), time.UnixMilli(d.Last).UTC().Format(time.RFC3339Nano), d.Label})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", fn.Path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), fn.Path)
}
