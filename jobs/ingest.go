package jobs

import (
	"context"
	"os"
	"path/filepath"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/count"
	"github.com/muonml/muon/transforms/decode"
)

func init() { register("ingest", ingest{}) }

// ingest decodes the source topics, writes dead letters to
// <topic><suffix>, and counts records per device: into CountsFile for
// bounded reads, into CountsTopic per event-time minute for unbounded ones.
type ingest struct{}

// CountsFile is where a bounded ingest job writes its per-device counts.
func CountsFile(spec *configs.Spec) string {
	return filepath.Join(spec.Output.Dir, "device-counts.csv")
}

// CountsTopic is where an unbounded ingest job writes per-device counts,
// one JSON record per device and minute of event time.
func CountsTopic(spec *configs.Spec) string { return spec.Name + ".counts" }

func (ingest) Outputs(spec *configs.Spec) []string {
	if spec.Source.IsBounded() {
		return nil
	}
	return []string{CountsTopic(spec)}
}

func (ingest) Check(context.Context, *configs.Spec) error { return nil }

func (ingest) Build(s beam.Scope, spec *configs.Spec, o Options) error {
	s = s.Scope("jobs.Ingest")
	_ = os.Remove(CountsFile(spec))
	rp := o.sourceParams(spec)
	batches := kafkaio.ReadBatches(s, rp)
	images := spec.Source.Format == "image"
	var decoded, dead beam.PCollection
	if images {
		decoded, dead = decode.Images(s, DecodeParams(spec), batches)
	} else {
		decoded, dead = decode.Sensors(s, DecodeParams(spec), batches)
	}
	wp := kafkaio.WriteParams{Brokers: o.Brokers, Security: spec.Kafka.Security(), ReconnectFor: spec.Kafka.ReconnectFor.D()}
	o.ack(kafkaio.Write(s.Scope("DeadLetters"), wp, dead))
	if rp.Unbounded {
		o.ack(kafkaio.Write(s.Scope("Counts"), wp, count.PerMinute(s, CountsTopic(spec), images, decoded)))
		return nil
	}
	count.ToFile(s, CountsFile(spec), images, decoded)
	return nil
}

func (ingest) Summarize(_ context.Context, spec *configs.Spec, res *runners.Result, sum *Summary) error {
	if !spec.Source.IsBounded() {
		sum.CountsTopic = CountsTopic(spec)
		return nil
	}
	sum.Devices = res.Counter(count.Namespace, count.Devices)
	sum.CountsFile = CountsFile(spec)
	sum.DeviceLabels = res.Under(count.Namespace, count.LabelPrefix)
	return nil
}
