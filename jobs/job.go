package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/message"
	"github.com/muonml/muon/runners"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/decode"
	"github.com/muonml/muon/transforms/featurize"
)

// Job is one kind of job.
type Job interface {
	// Outputs names the topics the job writes besides dead letters: they
	// are created before it starts.
	Outputs(spec *configs.Spec) []string
	// Check checks what the job needs and the spec names (keys, stores,
	// the models it serves) before anything starts.
	Check(ctx context.Context, spec *configs.Spec) error
	// Build builds the job's pipeline into s.
	Build(s beam.Scope, spec *configs.Spec, o Options) error
	// Summarize fills in the job's part of sum from the runner's result
	// and the stores the job wrote.
	Summarize(ctx context.Context, spec *configs.Spec, res *runners.Result, sum *Summary) error
}

// kinds maps a spec's job field to its Job; filled by each kind's init.
var kinds = map[string]Job{}

// register adds a kind; called from init only.
func register(kind string, j Job) {
	if _, dup := kinds[kind]; dup {
		panic("jobs: kind " + kind + " registered twice")
	}
	kinds[kind] = j
}

// For returns the Job of a kind.
func For(kind string) (Job, error) {
	if j, ok := kinds[kind]; ok {
		return j, nil
	}
	return nil, fmt.Errorf("jobs: unknown job %q: use one of %s", kind, strings.Join(Kinds(), ", "))
}

// Kinds lists the registered kinds, sorted.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

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
	// Group, for an unbounded read, is the consumer group that holds its
	// durable position (kafkaio.Params.Group). Run sets it on the edge
	// runner, with acks, to which the job's sinks add their
	// acknowledgements: Run then commits the positions after them.
	Group string
	acks  *[]beam.PCollection
}

// ack adds a sink's acknowledgements (see kafkaio.CommitPositions).
func (o Options) ack(c beam.PCollection) {
	if o.acks != nil {
		*o.acks = append(*o.acks, c)
	}
}

// PositionGroup is the consumer group that holds the durable position of
// spec's unbounded read on the edge runner.
func PositionGroup(spec *configs.Spec) string { return "muon." + spec.Name }

// positionSlack is the longest event-time window spec's pipeline holds
// records in before it writes what they make: a position is committed
// only once the outputs' watermark is this far past its records.
func positionSlack(spec *configs.Spec) time.Duration {
	var slack time.Duration
	if w := spec.Features.Window; w.Size > 0 {
		slack = w.Size.D() + w.AllowedLateness.D()
	}
	if spec.Job == "ingest" {
		slack = max(slack, time.Minute) // count.PerMinute
	}
	if spec.Job == "train" {
		slack = max(slack, spec.Training.Stream.Window.D()+spec.Features.Window.AllowedLateness.D())
	}
	return slack
}

// sourceParams is SourceParams with the stop conditions of an unbounded read.
func (o Options) sourceParams(spec *configs.Spec) kafkaio.Params {
	rp := SourceParams(spec, o.Brokers)
	if rp.Unbounded {
		rp.StopFile = o.StopFile
		rp.Until = o.Until
		rp.Group = o.Group
	}
	return rp
}

// SourceParams maps a spec's source section onto kafkaio.Params.
func SourceParams(spec *configs.Spec, brokers []string) kafkaio.Params {
	src := spec.Source
	p := kafkaio.Params{
		Brokers:            brokers,
		Security:           spec.Kafka.Security(),
		Topics:             src.Topics,
		Unbounded:          !src.IsBounded(),
		CheckpointRecords:  src.CheckpointRecords,
		CheckpointInterval: src.CheckpointInterval.D(),
		IdleTimeout:        src.IdleTimeout.D(),
		BatchRecords:       src.BatchRecords,
		FetchMaxBytes:      src.FetchMaxBytes,
		FetchConns:         src.FetchConns,
		ReconnectFor:       spec.Kafka.ReconnectFor.D(),
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

// FeatureNames are the names of a job's feature row columns, in order.
func FeatureNames(spec *configs.Spec) []string {
	f := spec.Features
	if f.Kind == "images" {
		names := make([]string, 0, f.Image.Width*f.Image.Height)
		for y := 0; y < f.Image.Height; y++ {
			for x := 0; x < f.Image.Width; x++ {
				names = append(names, fmt.Sprintf("px%d_%d", y, x))
			}
		}
		return names
	}
	if f.Kind == "readings" {
		return f.Channels
	}
	if f.Kind == "rocket" {
		return featurize.RocketNames(featurize.RocketWidth(f.Rocket.Features))
	}
	return featurize.Names(f.Channels, f.Bands)
}

// RowNames names the values of a job's rows as its featurizer makes them:
// FeatureNames, except for kind rocket, whose rows are raw series (the
// model's features are made from them): <channel>[<t>].
func RowNames(spec *configs.Spec) []string {
	f := spec.Features
	if f.Kind != "rocket" {
		return FeatureNames(spec)
	}
	names := make([]string, 0, len(f.Channels)*f.Rocket.Length)
	for _, c := range f.Channels {
		for t := 0; t < f.Rocket.Length; t++ {
			names = append(names, fmt.Sprintf("%s[%d]", c, t))
		}
	}
	return names
}

// RowWidth is how many values a job's rows have: len(RowNames).
func RowWidth(spec *configs.Spec) int {
	if f := spec.Features; f.Kind == "rocket" {
		return len(f.Channels) * f.Rocket.Length
	}
	return len(FeatureNames(spec))
}

// checkedStats are the statistics of a job's feature rows, checked by
// analyze.Require: a channel the data never carries fails the job before
// anything is trained or written on all-missing features; constant
// features are counted and named for the summary.
// seen (PCollection<featurize.SeenNames>) names what the readings carried
// in the error.
func checkedStats(s beam.Scope, spec *configs.Spec, dim int, rows, seen beam.PCollection) beam.PCollection {
	return requireStats(s, spec, analyze.Features(s, dim, rows), seen)
}

// requireStats checks the statistics (PCollection<analyze.Spec>) of a
// job's rows as its featurizer makes them (RowNames) as checkedStats says.
func requireStats(s beam.Scope, spec *configs.Spec, stats, seen beam.PCollection) beam.PCollection {
	f := spec.Features
	var groups []analyze.Group
	if f.Kind != "images" && spec.Source.Format != "image" {
		w := featurize.Width(f.Bands)
		switch f.Kind {
		case "readings":
			w = 1
		case "rocket":
			w = f.Rocket.Length
		}
		for i, c := range f.Channels {
			groups = append(groups, analyze.Group{Name: c, From: i * w, To: (i + 1) * w})
		}
	}
	rp := analyze.RequireParams{Groups: groups, What: "features.channels", Names: RowNames(spec)}
	if spec.Job == "train" && spec.Model.Classifies() {
		rp.Labels, rp.LabelsWhat = spec.Model.Labels, "model.labels"
	}
	return analyze.Require(s, rp, stats, seen)
}

// FeaturesArchive is the root of a job's Parquet feature archive.
func FeaturesArchive(spec *configs.Spec) string { return filepath.Join(spec.Archive.Dir, "features") }

// ReadingsArchive is the root of a job's Parquet readings archive.
func ReadingsArchive(spec *configs.Spec) string { return filepath.Join(spec.Archive.Dir, "readings") }

// archiveParams are the parameters of the archive writer under root: of
// features of dim columns, or of readings when dim is 0.
func archiveParams(spec *configs.Spec, root string, dim int) parquetio.WriteParams {
	p := parquetio.WriteParams{Root: root, Daily: spec.Archive.Partition == "day"}
	if dim > 0 {
		p.Dim, p.Names = dim, RowNames(spec)
	}
	return p
}

// readTopics are the topics a job reads: the source's and, for a train
// job, its test topics.
func readTopics(spec *configs.Spec) []string {
	read := append([]string(nil), spec.Source.Topics...)
	if spec.Job == "train" {
		read = append(read, spec.Training.Test.Topics...)
	}
	return read
}

// specHash is the SHA-256 of the spec as the job ran it.
func specHash(spec *configs.Spec) string {
	b, _ := json.Marshal(spec)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
