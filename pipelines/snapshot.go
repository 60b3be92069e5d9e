package pipelines

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/internal/atomicfile"
	"github.com/muonml/muon/io/arrowio"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/compress"
	"github.com/muonml/muon/models/snapshot"
	"github.com/muonml/muon/transforms/analyze"
	"github.com/muonml/muon/transforms/train"
	"gonum.org/v1/gonum/mat"
)

func init() {
	register.DoFn8x1[context.Context, []byte, train.State, func(*analyze.Spec) bool, func(*arrowio.Batch) bool, func(*arrowio.Batch) bool, func(*arrowio.Batch) bool, func(*snapshot.Source) bool, error](&snapshotFn{})
	register.Iter1[snapshot.Source]()
	register.DoFn2x1[context.Context, train.Published, error](&streamSnapshotFn{})
	beam.RegisterCoder(reflect.TypeOf((*snapshot.Source)(nil)).Elem(), encodeSource, decodeSource)
}

// encodeSource and decodeSource are snapshot.Source's coder, JSON.
func encodeSource(s snapshot.Source) ([]byte, error) { return json.Marshal(s) }

func decodeSource(b []byte) (snapshot.Source, error) {
	var s snapshot.Source
	err := json.Unmarshal(b, &s)
	return s, err
}

// SnapshotFile is where a train job writes what became of its snapshot.
func SnapshotFile(spec *configs.Spec) string { return filepath.Join(spec.Output.Dir, "snapshot.json") }

// SnapshotResult is what SnapshotFile holds.
type SnapshotResult struct {
	Published bool   `json:"published"`
	Version   string `json:"version"`
	Path      string `json:"path"`
	// Reason is why the quality gate rejected the snapshot.
	Reason string `json:"reason,omitempty"`
	Size   int64  `json:"size"`
	// Ratio is the size of the float64 weights over the snapshot's.
	Ratio    float64                   `json:"ratio"`
	Weights  string                    `json:"weights"`
	Sparsity float64                   `json:"sparsity"`
	Metrics  map[string]models.Metrics `json:"metrics"`
	Signer   string                    `json:"signer"`
}

// CheckFiles checks what a spec names on disk and the job needs before
// it starts (the signing key), so that a job fails before it replays or
// reads anything.
func CheckFiles(spec *configs.Spec) error { return checkSnapshotSpec(spec) }

// checkSnapshotSpec fails before the job starts if the signing key does
// not load.
func checkSnapshotSpec(spec *configs.Spec) error {
	if spec.Snapshot.Key == "" {
		return nil
	}
	if _, err := snapshot.LoadPrivateKey(spec.Snapshot.Key); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			dir, name := filepath.Split(spec.Snapshot.Key)
			return fmt.Errorf("snapshot.key: %w; create a key pair with: muon models keygen --dir %s --name %s", err, filepath.Clean(dir), strings.TrimSuffix(name, ".key"))
		}
		return fmt.Errorf("snapshot.key: %w", err)
	}
	return nil
}

// specHash is the SHA-256 of the spec as the job ran it.
func specHash(spec *configs.Spec) string {
	b, _ := json.Marshal(spec)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// snapshotFn runs once, on an impulse with everything as side inputs (as
// a main input, the final state would fuse it into a stage that the test
// batches depend on, a cycle), and compresses the trained model, measures the float and the
// compressed model on the validation and test rows, applies the quality
// gate, and publishes a signed snapshot to the store, or rejects it there
// with the reason.
type snapshotFn struct {
	// Source names what the rows were read from, for errors.
	Source string
	Spec   configs.Snapshot
	Params train.Params
	Names  []string
	Name   string
	// Archive and TestArchive are the feature archives read, if any.
	Archive     []string
	TestArchive []string
	SpecHash    string
	Version     string
	OutputDir   string
	TargetCap   float64
}

func (fn *snapshotFn) ProcessElement(ctx context.Context, _ []byte, st train.State, stats func(*analyze.Spec) bool, trainIter, valIter, testIter func(*arrowio.Batch) bool, sourceIter func(*snapshot.Source) bool) error {
	sp, err := onlyStats(stats, fn.Source)
	if err != nil {
		return err
	}
	key, err := snapshot.LoadPrivateKey(fn.Spec.Key)
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
		return train.Data(fn.Params, bs)
	}
	xv, yv, err := gather(valIter)
	if err != nil {
		return err
	}
	xt, yt, err := gather(testIter)
	if err != nil {
		return err
	}
	m, err := st.Model(fn.Params.Model)
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
	if fn.Spec.Prune > 0 {
		mask, err := compress.Prune(c, fn.Spec.Prune, fn.Spec.PerLayer)
		if err != nil {
			return err
		}
		if fn.Spec.FineTune > 0 {
			x, y, err := gather(trainIter)
			if err != nil {
				return err
			}
			if x != nil {
				opt, err := models.NewOptimizer(fn.Params.Optimizer, c.NumParams())
				if err != nil {
					return err
				}
				compress.FineTune(c, mask, opt, x, y, fn.Spec.FineTune, fn.Params.BatchSize, rand.New(rand.NewPCG(fn.Params.Seed, 1<<40)))
			}
		}
	}
	dtype := weightsDType[fn.Spec.Weights]
	tensors, err := compress.Tensors(c, dtype)
	if err != nil {
		return err
	}
	cm, err := compress.FromTensors(c.Desc(), tensors)
	if err != nil {
		return err
	}
	measure("compressed", cm)
	reason := gate(fn.Spec.Gate, metrics, m.Head() == models.SoftmaxHead)

	sp.Names = fn.Names
	pre, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	man := snapshot.Manifest{
		Name: fn.Name, Model: m.Desc(), Labels: fn.Params.Labels, Preprocess: pre, Metrics: metrics,
		Compression: snapshot.Compression{Sparsity: compress.Sparsity(c), Weights: fn.Spec.Weights},
		Lineage:     snapshot.Lineage{SpecHash: fn.SpecHash, MuonVersion: fn.Version, Created: time.Now().UTC()},
	}
	if man.Lineage.Sources, err = fn.lineage(sourceIter); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := snapshot.Write(&buf, man, tensors, key); err != nil {
		return err
	}
	store := &modelstore.Dir{Root: fn.Spec.Store}
	res := SnapshotResult{Size: int64(buf.Len()), Ratio: float64(8*m.NumParams()) / float64(buf.Len()), Weights: fn.Spec.Weights,
		Sparsity: man.Compression.Sparsity, Metrics: metrics, Signer: snapshot.KeyIDOf(key.Public().(ed25519.PublicKey)).String()}
	var v modelstore.Version
	if reason == "" {
		v, err = store.Publish(ctx, fn.Name, &buf)
		res.Published = true
	} else {
		v, err = store.Reject(ctx, fn.Name, &buf, reason)
		res.Reason = reason
	}
	if err != nil {
		return err
	}
	res.Version, res.Path = v.String(), v.Path
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(fn.OutputDir, "snapshot.json"), append(b, '\n'))
}

// lineage lists what the job read: the Kafka offset ranges, then the
// archives' files, training data before test data.
func (fn *snapshotFn) lineage(iter func(*snapshot.Source) bool) ([]snapshot.Source, error) {
	var out []snapshot.Source
	var src snapshot.Source
	for iter(&src) {
		out = append(out, src)
	}
	for _, a := range []struct {
		use   string
		paths []string
	}{{"train", fn.Archive}, {"test", fn.TestArchive}} {
		if len(a.paths) == 0 {
			continue
		}
		files, err := parquetio.Files(a.paths...)
		if err != nil {
			return nil, fmt.Errorf("lineage: %w", err)
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

// gate says why metrics miss the gate; "" if they pass.
func gate(g configs.Gate, metrics map[string]models.Metrics, classifier bool) string {
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

// weightsDType maps snapshot.weights onto the tensors' storage type.
var weightsDType = map[string]snapshot.DType{"int8": snapshot.Int8, "float16": snapshot.Float16, "float32": snapshot.Float32}

// streamSnapshotFn publishes every window's model of a train job on a
// stream as a signed snapshot to the snapshot store: compressed as the
// snapshot section says (not pruned: there are no rows to fine-tune on
// here), with the preprocessing the stream standardizes with, and the
// window in its lineage. Inference serving from the store picks each up
// as it is published.
type streamSnapshotFn struct {
	Spec   configs.Snapshot
	Params train.Params
	// Preprocess is the analyze.Spec, as JSON, that standardizes the rows.
	Preprocess string
	Name       string
	SpecHash   string
	Version    string

	key ed25519.PrivateKey
}

func (fn *streamSnapshotFn) Setup() error {
	var err error
	fn.key, err = snapshot.LoadPrivateKey(fn.Spec.Key)
	return err
}

func (fn *streamSnapshotFn) ProcessElement(ctx context.Context, pub train.Published) error {
	m, err := models.FromParams(fn.Params.Model, pub.Params)
	if err != nil {
		return fmt.Errorf("snapshot of the window ending %s: %w", pub.Window.Format(time.RFC3339), err)
	}
	dtype := weightsDType[fn.Spec.Weights]
	tensors, err := compress.Tensors(m, dtype)
	if err != nil {
		return err
	}
	man := snapshot.Manifest{
		Name: fn.Name, Model: m.Desc(), Labels: fn.Params.Labels, Preprocess: json.RawMessage(fn.Preprocess),
		Metrics:     map[string]models.Metrics{"float.window_train": {N: int(pub.Rows), Loss: pub.TrainLoss}},
		Compression: snapshot.Compression{Weights: fn.Spec.Weights},
		Lineage: snapshot.Lineage{SpecHash: fn.SpecHash, MuonVersion: fn.Version, Created: time.Now().UTC(),
			Window: pub.Window, Base: pub.Base},
	}
	var buf bytes.Buffer
	if err := snapshot.Write(&buf, man, tensors, fn.key); err != nil {
		return err
	}
	size := buf.Len()
	store := &modelstore.Dir{Root: fn.Spec.Store}
	v, err := store.Publish(ctx, fn.Name, &buf)
	if err != nil {
		return fmt.Errorf("snapshot of the window ending %s: %w", pub.Window.Format(time.RFC3339), err)
	}
	fmt.Fprintf(os.Stderr, "muon: window ending %s: published snapshot %s (%d bytes, %s weights)\n", pub.Window.Format(time.RFC3339), v, size, fn.Spec.Weights)
	return nil
}
