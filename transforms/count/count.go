package count

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/internal/printable"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/records"
	_ "github.com/muonml/muon/records/coders"
)

// Metric names, in namespace Namespace, set by ToFile: how many devices
// there were, and how many had each first label (LabelPrefix + the label,
// for at most MaxLabels labels; the rest under LabelPrefix + "…").
const (
	Namespace   = "count"
	Devices     = "devices"
	LabelPrefix = "devices.label."
	MaxLabels   = 64
)

func init() {
	register.Function1x2(readingStats)
	register.Function1x2(imageStats)
	register.Function2x1(mergeStats)
	register.Function3x1(windowedCountRecord)
	register.Iter1[DeviceStats]()
	register.Function2x1(withDevice)
	register.DoFn4x0[beam.Window, string, DeviceStats, func(kafkaio.Record)](&windowedCountFn{})
	// Once per job: reflection suffices.
	beam.RegisterType(reflect.TypeOf((*writeCountsFn)(nil)).Elem())
}

// DeviceStats summarises what one device sent.
type DeviceStats struct {
	Device  string
	Records int64
	First   int64 // event time, unix ms
	Last    int64
	Label   string // the first label seen
}

func readingStats(r records.Reading) (string, DeviceStats) {
	ms := r.Time.UnixMilli()
	return r.Device, DeviceStats{Device: r.Device, Records: 1, First: ms, Last: ms, Label: r.Label}
}

func imageStats(im records.Image) (string, DeviceStats) {
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

// keyed turns readings (PCollection<records.Reading>) or images
// (PCollection<records.Image>) into PCollection<KV<string, DeviceStats>>.
func keyed(s beam.Scope, images bool, col beam.PCollection) beam.PCollection {
	if images {
		return beam.ParDo(s, imageStats, col)
	}
	return beam.ParDo(s, readingStats, col)
}

// ToFile counts a bounded read's records per device (col:
// PCollection<records.Reading>, or PCollection<records.Image> if images) and
// writes the counts to a CSV file at path, sorted by device, atomically.
func ToFile(s beam.Scope, path string, images bool, col beam.PCollection) {
	s = s.Scope("count.ToFile")
	counts := beam.ParDo(s, withDevice, beam.CombinePerKey(s, mergeStats, keyed(s, images, col)))
	grouped := beam.GroupByKey(s, beam.AddFixedKey(s, counts))
	beam.ParDo0(s, &writeCountsFn{Path: path}, grouped)
}

// PerMinute counts an unbounded read's records per device and event-time
// minute (col as for ToFile) and renders each count as a JSON Kafka record
// for topic: PCollection<kafkaio.Record>.
func PerMinute(s beam.Scope, topic string, images bool, col beam.PCollection) beam.PCollection {
	s = s.Scope("count.PerMinute")
	windowed := beam.WindowInto(s, window.NewFixedWindows(time.Minute), keyed(s, images, col))
	counts := beam.CombinePerKey(s, mergeStats, windowed)
	return beam.ParDo(s, &windowedCountFn{Topic: topic}, counts)
}

// windowedCountFn renders one device's counts in one window as a record.
type windowedCountFn struct {
	Topic string
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
// a file, and reports the devices and their labels in metrics.
type writeCountsFn struct {
	Path string
}

func (fn *writeCountsFn) ProcessElement(ctx context.Context, _ int, iter func(*DeviceStats) bool) error {
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
	if err := os.Rename(tmp.Name(), fn.Path); err != nil {
		return err
	}
	beam.NewCounter(Namespace, Devices).Inc(ctx, int64(len(all)))
	labels := map[string]int64{}
	for _, d := range all {
		if d.Label != "" {
			labels[LabelName(d.Label, labels)]++
		}
	}
	for l, n := range labels {
		beam.NewCounter(Namespace, LabelPrefix+l).Inc(ctx, n)
	}
	return nil
}

// LabelName is the metric name part for label: the label itself, escaped
// and cut to printable form, unless seen already holds MaxLabels other
// labels ("…").
func LabelName(label string, seen map[string]int64) string {
	label = printable.String(label, maxLabelRunes)
	if _, ok := seen[label]; ok || len(seen) < MaxLabels {
		return label
	}
	return "…"
}

// maxLabelRunes caps a label in a metric name: labels come from messages.
const maxLabelRunes = 64
