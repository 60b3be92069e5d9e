package publish

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/compress"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/train"
	"gonum.org/v1/gonum/mat"
)

// Metric names, in namespace Namespace.
const (
	Namespace = "publish"
	// Published counts snapshots published; Rejected those the gate
	// refused.
	Published = "published"
	Rejected  = "rejected"
	// Version is the sequence number of the version Trained published or
	// rejected (one per job): the job's summary opens it in the store.
	Version = "version"
)

var (
	publishedCount = beam.NewCounter(Namespace, Published)
	rejectedCount  = beam.NewCounter(Namespace, Rejected)
	versionSeq     = beam.NewCounter(Namespace, Version)
)

func init() {
	// Both run once per job or window, not per element: reflection is
	// fast enough and saves the generic wrappers.
	beam.RegisterType(reflect.TypeOf((*trainedFn)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*windowsFn)(nil)).Elem())
	register.DoFn1x1[kafkaio.PartitionRange, snapshot.Source](&sourceFn{})
	register.Iter1[snapshot.Source]()
	register.Iter1[analyze.Spec]()
	beam.RegisterCoder(reflect.TypeOf((*snapshot.Source)(nil)).Elem(), encodeSource, decodeSource)
}

// encodeSource and decodeSource are snapshot.Source's coder, JSON.
func encodeSource(s snapshot.Source) ([]byte, error) { return json.Marshal(s) }

func decodeSource(b []byte) (snapshot.Source, error) {
	var s snapshot.Source
	err := json.Unmarshal(b, &s)
	return s, err
}

// Params configures Trained and Windows.
type Params struct {
	// Spec is the snapshot section, with defaults (Spec.Defaults). Its Key
	// is required.
	Spec Spec
	// Name names the model in the store. Required.
	Name string
	// Train is how the model was trained (its descriptor, labels,
	// optimizer and seed for fine-tuning). Required.
	Train train.Params
	// Names are the feature names, kept in the preprocessing.
	Names []string
	// Source names what the rows were read from, for errors.
	Source string
	// Archive and TestArchive are the feature archives read, if any: their
	// files go into the lineage.
	Archive, TestArchive []string
	// ArchiveFrom and ArchiveTo are the partitions of Archive read.
	ArchiveFrom, ArchiveTo time.Time
	// SpecHash and Version (muon's) go into the lineage.
	SpecHash, Version string
	// Cluster is the Kafka cluster of a store on Kafka (Spec.Store
	// kafka://<topic>).
	Cluster kafkaio.Cluster
}

func (p Params) validate(name string) {
	switch {
	case p.Spec.Key == "":
		panic(name + ": Params.Spec.Key is required")
	case p.Spec.Store == "":
		panic(name + ": Params.Spec.Store is required (Spec.Defaults)")
	case p.Name == "":
		panic(name + ": Params.Name is required")
	}
}

// Trained compresses, measures, gates, signs and publishes the final model
// of a bounded train job, once: final is PCollection<train.State> (one
// element), stats PCollection<analyze.Spec> (the training rows'
// statistics, one element), trainB, valB and testB PCollection<arrowio.Batch>
// (standardized here with stats; trainB is read only to fine-tune a pruned
// model), sources
// PCollection<snapshot.Source> (the Kafka ranges read). The outcome is in
// the metrics Published or Rejected and Version.
//
// after, PCollection<string>, must be complete before anything is
// published: the model file (train.Save's output), so that a job that
// fails to write it never leaves a new model serving.
func Trained(s beam.Scope, p Params, final, stats, trainB, valB, testB, sources, after beam.PCollection) {
	s = s.Scope("publish.Trained")
	p.validate("publish.Trained")
	// Everything is a side input of an impulse: as a main input, the final
	// state would fuse this into a stage that the test batches depend on,
	// a cycle.
	beam.ParDo0(s, &trainedFn{P: p}, beam.Impulse(s),
		beam.SideInput{Input: final}, beam.SideInput{Input: stats}, beam.SideInput{Input: trainB},
		beam.SideInput{Input: valB}, beam.SideInput{Input: testB}, beam.SideInput{Input: sources},
		beam.SideInput{Input: after})
}

type trainedFn struct{ P Params }

func (fn *trainedFn) ProcessElement(ctx context.Context, _ []byte, st train.State, stats func(*analyze.Spec) bool, trainIter, valIter, testIter func(*arrowio.Batch) bool, sourceIter func(*snapshot.Source) bool, _ func(*string) bool) error {
	p := fn.P
	sp, err := train.OnlyStats(stats, p.Source)
	if err != nil {
		return err
	}
	// The snapshot keeps what serving needs, its statistics as float32:
	// the model is measured with those.
	sp = sp.Compact()
	key, err := snapshot.LoadPrivateKey(p.Spec.Key)
	if err != nil {
		return err
	}
	gather := func(iter func(*arrowio.Batch) bool) (*mat.Dense, models.Targets, error) {
		var bs []arrowio.Batch
		var b arrowio.Batch
		for iter(&b) {
			bs = append(bs, b)
		}
		if len(bs) == 0 {
			return nil, models.Targets{}, nil
		}
		return train.Data(p.Train, &sp, bs)
	}
	xv, yv, err := gather(valIter)
	if err != nil {
		return err
	}
	xt, yt, err := gather(testIter)
	if err != nil {
		return err
	}
	m, err := st.Model(p.Train.Model)
	if err != nil {
		return err
	}
	metrics := map[string]models.Metrics{}
	measure := func(prefix string, m *models.Model) {
		if xv != nil {
			metrics[prefix+".validation"] = models.Evaluate(m, xv, yv)
		}
		if xt != nil {
			metrics[prefix+".test"] = models.Evaluate(m, xt, yt)
		}
	}
	measure("float", m)

	c := m.Clone()
	if p.Spec.Prune > 0 {
		mask, err := compress.Prune(c, p.Spec.Prune, p.Spec.PerLayer)
		if err != nil {
			return err
		}
		if p.Spec.FineTune > 0 {
			x, y, err := gather(trainIter)
			if err != nil {
				return err
			}
			if x != nil {
				opt, err := models.NewOptimizer(p.Train.Optimizer, c.NumParams())
				if err != nil {
					return err
				}
				compress.FineTune(c, mask, opt, x, y, p.Spec.FineTune, p.Train.BatchSize, rand.New(rand.NewPCG(p.Train.Seed, 1<<40)))
			}
		}
	}
	tensors, err := compress.Tensors(c, weightsDType(p.Spec.Weights), p.Spec.Bits)
	if err != nil {
		return err
	}
	cm, err := compress.FromTensors(c.Desc(), tensors)
	if err != nil {
		return err
	}
	measure("compressed", cm)
	reason := GateReason(p.Spec.Gate, metrics, m.Head() == models.SoftmaxHead)

	sp.Names = p.Names
	pre, err := analyze.MarshalCompact(sp)
	if err != nil {
		return err
	}
	man := snapshot.Manifest{
		Name: p.Name, Model: m.Desc(), Labels: p.Train.Labels, Preprocess: pre, Metrics: manifestMetrics(metrics),
		Compression: snapshot.Compression{Sparsity: compress.Sparsity(c), Weights: p.Spec.Weights},
		Lineage:     snapshot.Lineage{SpecHash: p.SpecHash, MuonVersion: p.Version, Created: time.Now().UTC()},
	}
	if man.Lineage.Sources, err = lineage(p, sourceIter); err != nil {
		return err
	}
	content := signed(man, tensors, key)
	store := modelstore.Locate(p.Spec.Store, p.Cluster)
	var v modelstore.Version
	if reason == "" {
		v, err = store.Publish(ctx, p.Name, content)
	} else {
		v, err = store.Reject(ctx, p.Name, content, reason)
	}
	if err != nil {
		return err
	}
	if reason == "" {
		publishedCount.Inc(ctx, 1)
	} else {
		rejectedCount.Inc(ctx, 1)
	}
	versionSeq.Inc(ctx, int64(v.Seq))
	return nil
}

// lineage lists what the job read: the Kafka offset ranges, then the
// archives' files, training data before test data.
func lineage(p Params, iter func(*snapshot.Source) bool) ([]snapshot.Source, error) {
	var out []snapshot.Source
	var src snapshot.Source
	for iter(&src) {
		out = append(out, src)
	}
	out = withoutEmptyPartitions(out)
	for _, a := range []struct {
		use      string
		paths    []string
		from, to time.Time
	}{{"train", p.Archive, p.ArchiveFrom, p.ArchiveTo}, {"test", p.TestArchive, time.Time{}, time.Time{}}} {
		if len(a.paths) == 0 {
			continue
		}
		all, err := parquetio.Files(a.paths...)
		if err != nil {
			return nil, fmt.Errorf("lineage: %w", err)
		}
		var files []string
		for _, f := range all {
			if ok, err := parquetio.InRange(f, a.from, a.to); err != nil {
				return nil, fmt.Errorf("lineage: %w", err)
			} else if ok {
				files = append(files, f)
			}
		}
		out = append(out, snapshot.Source{Kind: "parquet", Use: a.use, Files: files})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Use != b.Use {
			return a.Use > b.Use // train, then test
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return out, nil
}

// withoutEmptyPartitions drops the Kafka ranges of partitions that held no
// record from offset 0 (from and to 0) when the same topic has others for
// the same use: a partition missing from the lineage reads from its start,
// as one listed at 0 does (jobs' source.start: previous), and a topic
// keeps at least one entry. A range that ends past 0, even an empty one,
// says where the next read starts, and stays.
func withoutEmptyPartitions(ss []snapshot.Source) []snapshot.Source {
	type topicUse struct{ topic, use string }
	kept := map[topicUse]bool{}
	for _, s := range ss {
		if s.Kind == "kafka" && (s.From != 0 || s.To != 0) {
			kept[topicUse{s.Topic, s.Use}] = true
		}
	}
	out := ss[:0:0]
	for _, s := range ss {
		if s.Kind == "kafka" && s.From == 0 && s.To == 0 && kept[topicUse{s.Topic, s.Use}] {
			continue
		}
		out = append(out, s)
	}
	return out
}

// GateReason says why metrics (keyed "float.validation",
// "compressed.validation", …) miss gate g; "" if they pass.
func GateReason(g Gate, metrics map[string]models.Metrics, classifier bool) string {
	fv, okF := metrics["float.validation"]
	cv, okC := metrics["compressed.validation"]
	if !okF || !okC {
		if g.Min > 0 || g.Max > 0 {
			return "no validation rows to measure the gate on"
		}
		return ""
	}
	if classifier {
		name, f, c := "accuracy", fv.Accuracy, cv.Accuracy
		if g.Balanced {
			name, f, c = "balanced accuracy", fv.BalancedAccuracy, cv.BalancedAccuracy
		}
		switch {
		case g.Min > 0 && f < g.Min:
			return fmt.Sprintf("validation %s %.4f is below the gate's %.4f", name, f, g.Min)
		case f-c > g.MaxDrop:
			return fmt.Sprintf("compression costs %.4f of validation %s (%.4f → %.4f); the gate allows %.4f", f-c, name, f, c, g.MaxDrop)
		}
		return ""
	}
	switch {
	case g.Max > 0 && fv.RMSE > g.Max:
		return fmt.Sprintf("validation RMSE %.4f is above the gate's %.4f", fv.RMSE, g.Max)
	case cv.RMSE > fv.RMSE*(1+g.MaxDrop):
		return fmt.Sprintf("compression raises validation RMSE from %.4f to %.4f; the gate allows %.1f%%", fv.RMSE, cv.RMSE, 100*g.MaxDrop)
	}
	return ""
}

// Windows publishes every window's model of a train job on a stream
// (PCollection<train.Published>) as a signed snapshot: compressed as the
// spec says (not pruned: there are no rows to fine-tune on here), with
// preprocess, the statistics the stream standardizes with, and the window
// in its lineage. Inference serving from the store picks each up as it is
// published. Each counts in the metric Published.
func Windows(s beam.Scope, p Params, preprocess analyze.Spec, published beam.PCollection) error {
	s = s.Scope("publish.Windows")
	p.validate("publish.Windows")
	preprocess.Names = p.Names
	pre, err := analyze.MarshalCompact(preprocess)
	if err != nil {
		return err
	}
	beam.ParDo0(s, &windowsFn{P: p, Preprocess: string(pre)}, published)
	return nil
}

type windowsFn struct {
	P Params
	// Preprocess is the analyze.Spec, as JSON, that standardizes the rows.
	Preprocess string

	key ed25519.PrivateKey
}

func (fn *windowsFn) Setup() error {
	var err error
	fn.key, err = snapshot.LoadPrivateKey(fn.P.Spec.Key)
	return err
}

func (fn *windowsFn) ProcessElement(ctx context.Context, pub train.Published) error {
	p := fn.P
	m, err := models.FromParams(p.Train.Model, pub.Params)
	if err != nil {
		return fmt.Errorf("snapshot of the window ending %s: %w", pub.Window.Format(time.RFC3339), err)
	}
	tensors, err := compress.Tensors(m, weightsDType(p.Spec.Weights), p.Spec.Bits)
	if err != nil {
		return err
	}
	man := snapshot.Manifest{
		Name: p.Name, Model: m.Desc(), Labels: p.Train.Labels, Preprocess: json.RawMessage(fn.Preprocess),
		Metrics:     map[string]models.Metrics{"float.window_train": {N: int(pub.Rows), Loss: pub.TrainLoss}},
		Compression: snapshot.Compression{Weights: p.Spec.Weights},
		Lineage: snapshot.Lineage{SpecHash: p.SpecHash, MuonVersion: p.Version, Created: time.Now().UTC(),
			Window: pub.Window, Base: pub.Base},
	}
	store := modelstore.Locate(p.Spec.Store, p.Cluster)
	v, err := store.Publish(ctx, p.Name, signed(man, tensors, fn.key))
	if err != nil {
		return fmt.Errorf("snapshot of the window ending %s: %w", pub.Window.Format(time.RFC3339), err)
	}
	publishedCount.Inc(ctx, 1)
	fmt.Fprintf(os.Stderr, "muon: window ending %s: published snapshot %s (%d bytes, %s weights)\n", pub.Window.Format(time.RFC3339), v, v.Size, p.Spec.Weights)
	return nil
}

// Lineage marks the Kafka offset ranges a job read
// (PCollection<kafkaio.PartitionRange>) with use ("train" or "test"):
// PCollection<snapshot.Source>, for the snapshot's lineage.
func Lineage(s beam.Scope, use string, ranges beam.PCollection) beam.PCollection {
	s = s.Scope("publish.Lineage")
	return beam.ParDo(s, &sourceFn{Use: use}, ranges)
}

type sourceFn struct{ Use string }

func (fn *sourceFn) ProcessElement(r kafkaio.PartitionRange) snapshot.Source {
	return snapshot.Source{Kind: "kafka", Use: fn.Use, Topic: r.Topic, Partition: r.Partition, From: r.Start, To: r.End}
}

// signed is the snapshot of man and tensors signed by key as the version
// the store gives it.
func signed(man snapshot.Manifest, tensors []snapshot.Tensor, key ed25519.PrivateKey) modelstore.Content {
	return func(seq uint64) (io.Reader, error) {
		man.Version = seq
		var buf bytes.Buffer
		if err := snapshot.Write(&buf, man, tensors, key); err != nil {
			return nil, err
		}
		return &buf, nil
	}
}

// manifestMetrics are the metrics a snapshot carries: the figures its gate
// read, rounded to 6 significant digits, without the confusion matrices
// (model.json keeps them).
func manifestMetrics(metrics map[string]models.Metrics) map[string]models.Metrics {
	out := make(map[string]models.Metrics, len(metrics))
	for k, m := range metrics {
		m.Confusion = nil
		for _, v := range []*float64{&m.Loss, &m.Accuracy, &m.BalancedAccuracy, &m.RMSE, &m.MAE} {
			*v, _ = strconv.ParseFloat(strconv.FormatFloat(*v, 'g', 6, 64), 64)
		}
		out[k] = m
	}
	return out
}
