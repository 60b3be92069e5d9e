package publish

import (
	"errors"
	"fmt"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/modelstore"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/muonml/muon/models/snapshot"
)

// Spec is a train job's snapshot section: how the model is compressed,
// signed, gated and published. A bounded job publishes its final model, a
// job on a stream every window's model (unpruned and ungated: a window's
// model has no held-out rows to fine-tune or gate on). Without a key, a
// bounded job writes model.json only and a job on a stream its JSON models
// only. Job specs embed it; Defaults fills it in.
type Spec struct {
	// Key is the private signing key file (muon models keygen).
	Key string `yaml:"key"`
	// Store is the model store: a directory, or kafka://<topic> (a
	// compacted topic on the job's Kafka cluster, which every worker and
	// edge device that reads the job's topics reaches; see
	// modelstore.Kafka). Default <output.dir>/store.
	Store string `yaml:"store"`
	// Weights is how weights are stored: int8 (per output channel),
	// float16, float32, or shared (weight sharing: a k-means codebook of
	// 2^bits float32 values per tensor, a code per weight; the file
	// range-codes the codes, so a code costs about its entropy, less than
	// bits). Default int8.
	Weights string `yaml:"weights" enum:"int8,float16,float32,shared"`
	// Bits is the width of shared weights' codes, 1 to 8. Default
	// compress.DefaultSharedBits.
	Bits int `yaml:"bits" min:"0"`
	// Prune is the fraction of weights pruned to zero by magnitude (over
	// all layers, or each with per_layer). Default 0.
	Prune    float64 `yaml:"prune" min:"0"`
	PerLayer bool    `yaml:"per_layer"`
	// FineTune is how many epochs train the pruned model further, on the
	// training rows, with pruned weights held at zero. Default 2 when
	// pruning.
	FineTune int `yaml:"fine_tune" min:"0"`
	// Gate is what the model must reach to be published; a model that
	// misses goes under <store>/rejected with the reason.
	Gate Gate `yaml:"gate"`
}

// Gate is a train job's quality gate on the validation rows.
type Gate struct {
	// Min is the lowest validation accuracy of a classifier (balanced
	// accuracy with balanced: true); Max the highest validation RMSE of a
	// regression model. Default 0: no threshold.
	Min      float64 `yaml:"min" min:"0"`
	Max      float64 `yaml:"max" min:"0"`
	Balanced bool    `yaml:"balanced"`
	// MaxDrop is how much the compressed model may lose against the float
	// model: accuracy points as a fraction (classifier) or RMSE (regression,
	// as a fraction of the float RMSE). Default DefaultMaxDrop.
	MaxDrop float64 `yaml:"max_drop" min:"0"`
}

// Defaults of a snapshot section with a key.
const (
	DefaultWeights  = "int8"
	DefaultFineTune = 2
	DefaultMaxDrop  = 0.01
	// StoreDir is the store's folder under the job's output folder.
	StoreDir = "store"
)

// Defaults fills in what sp leaves out; outputDir is the job's output
// folder. A section without a key publishes nothing and stays as it is.
func (sp *Spec) Defaults(outputDir string) {
	if sp.Key == "" {
		return
	}
	if sp.Store == "" {
		sp.Store = filepath.Join(outputDir, StoreDir)
	}
	if sp.Weights == "" {
		sp.Weights = DefaultWeights
	}
	if sp.Prune > 0 && sp.FineTune == 0 {
		sp.FineTune = DefaultFineTune
	}
	if sp.Gate.MaxDrop == 0 {
		sp.Gate.MaxDrop = DefaultMaxDrop
	}
}

// CheckKey fails if the signing key does not load, naming the command
// that makes one; called before a job starts, so that it fails before it
// replays or reads anything.
func (sp *Spec) CheckKey() error {
	if sp.Key == "" {
		return nil
	}
	if _, err := snapshot.LoadPrivateKey(sp.Key); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			dir, name := filepath.Split(sp.Key)
			return fmt.Errorf("snapshot.key: %w; create a key pair with: muon models keygen --dir %s --name %s", err, filepath.Clean(dir), strings.TrimSuffix(name, ".key"))
		}
		return fmt.Errorf("snapshot.key: %w", err)
	}
	return nil
}

// CheckStore fails if the job could not publish to the store: it makes
// the store's folder and writes and removes a file there. Called before a
// job starts, so that a read-only or misplaced store fails before it
// replays, reads or trains anything.
func (sp *Spec) CheckStore() error {
	if sp.Key == "" {
		return nil
	}
	if topic, ok := strings.CutPrefix(sp.Store, modelstore.KafkaScheme); ok {
		if err := kafkaio.CheckTopic(topic); err != nil {
			return fmt.Errorf("snapshot.store %s: %w", sp.Store, err)
		}
		return nil // the topic is made when the first version is published
	}
	if err := os.MkdirAll(sp.Store, 0o755); err != nil {
		return fmt.Errorf("snapshot.store: %w", err)
	}
	f, err := os.CreateTemp(sp.Store, ".check-*")
	if err != nil {
		return fmt.Errorf("snapshot.store %s: the job could not publish its model there: %w", sp.Store, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// weightsDType maps Spec.Weights onto the tensors' storage type.
func weightsDType(w string) snapshot.DType {
	switch w {
	case "float16":
		return snapshot.Float16
	case "float32":
		return snapshot.Float32
	case "shared":
		return snapshot.Shared
	}
	return snapshot.Int8
}
