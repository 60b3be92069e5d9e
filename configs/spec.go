package configs

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/producer/replay"
	"github.com/muonml/muon/transforms/featurize"
	"github.com/muonml/muon/transforms/publish"
	"github.com/muonml/muon/transforms/train"
)

// Spec is a muon job spec.
type Spec struct {
	// Name names the job; it prefixes run ids and output files.
	Name string `yaml:"name" required:"true"`
	// Runner is edge (alias direct) or flink. Default edge; muon run
	// --runner overrides it.
	Runner string `yaml:"runner" enum:"edge,direct,flink"`
	// Endpoint is the Flink job server, host:port, for runner flink.
	Endpoint string `yaml:"endpoint"`
	// Flink says where a flink job's Go workers run and how it recovers.
	Flink Flink `yaml:"flink"`
	// Edge sets what an edge job's process may use.
	Edge Edge `yaml:"edge"`
	// Job is what the job does: ingest (decode, count per device),
	// features (decode, featurize, batch, archive to Parquet) or train
	// (decode, featurize, standardize, train data-parallel) or infer
	// (decode, featurize, batch, score with the newest verified snapshot
	// of each inference branch). Default ingest.
	Job      string   `yaml:"job" enum:"ingest,features,train,infer"`
	Kafka    Kafka    `yaml:"kafka"`
	Source   Source   `yaml:"source" required:"true"`
	Decode   Decode   `yaml:"decode"`
	Features Features `yaml:"features"`
	Batch    Batch    `yaml:"batch"`
	Archive  Archive  `yaml:"archive"`
	Model    Model    `yaml:"model"`
	Training Training `yaml:"training"`
	Snapshot Snapshot `yaml:"snapshot"`
	// Inference lists an infer job's branches (or a train job's on a
	// stream, scoring the rows it trains on): each scores the same feature
	// batches with its own model store and writes to its own topic.
	Inference []Branch `yaml:"inference"`
	Output    Output   `yaml:"output"`
	// Replay lists recordings to produce into Kafka before the job reads:
	// for the quick start and demos, usually with the embedded broker.
	Replay []Replay `yaml:"replay"`
}

// Kafka says where the brokers are and how muon connects to them.
type Kafka struct {
	// Brokers are bootstrap addresses, host:port. Empty: muon starts an
	// embedded broker inside its own process for the job.
	Brokers []string `yaml:"brokers"`
	// Partitions is the partition count of the topics the job creates
	// (replay topics, dead-letter topics), 1 to 4096. Default
	// kafkaio.DefaultPartitions.
	Partitions int `yaml:"partitions" min:"1" max:"4096"`
	// ReconnectFor is how long reads and writes keep reconnecting, with
	// backoff, to brokers that fail (a restart, a network blip) before
	// they give up: a stream's source then stops, the job drains, prints
	// its summary and says why. Default kafkaio.DefaultReconnectFor.
	ReconnectFor Duration `yaml:"reconnect_for"`
	// TLS encrypts every connection muon makes to the brokers (reads,
	// writes, dead letters, topic creation, replays). Default: none.
	TLS *KafkaTLS `yaml:"tls"`
	// SASL authenticates every connection. Default: none. With TLS this is
	// Kafka's SASL_SSL; without, SASL_PLAINTEXT.
	SASL *KafkaSASL `yaml:"sasl"`
}

// KafkaTLS configures TLS to the brokers. Every field names a file, read
// where the job runs (on a cluster, on every worker).
type KafkaTLS struct {
	// CAFile is a PEM file of the authorities that sign the brokers'
	// certificates. Default: the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate and its key (PEM), for
	// brokers that require one. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the brokers' certificates must carry. Default:
	// the host of each broker address.
	ServerName string `yaml:"server_name"`
}

// KafkaSASL configures SASL authentication. The password never goes in a
// spec: it comes from a file or an environment variable.
type KafkaSASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism" required:"true" enum:"PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"`
	// Username to authenticate as.
	Username string `yaml:"username" required:"true"`
	// PasswordFile is a file holding the password (a trailing newline is
	// dropped). One of PasswordFile and PasswordEnv.
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv is the environment variable holding the password.
	PasswordEnv string `yaml:"password_env"`
	// Password is refused: a spec is shared, logged and submitted to
	// servers, so a password in it leaks. Use PasswordFile or PasswordEnv.
	Password string `yaml:"password"`
}

// Security is what Kafka says about how to connect, for kafkaio.
func (k *Kafka) Security() kafkaio.Security {
	var s kafkaio.Security
	if t := k.TLS; t != nil {
		s.TLS = &kafkaio.TLS{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName}
	}
	if a := k.SASL; a != nil {
		s.SASL = &kafkaio.SASL{Mechanism: a.Mechanism, Username: a.Username, PasswordFile: a.PasswordFile, PasswordEnv: a.PasswordEnv}
	}
	return s
}

// Cluster is where the brokers are (the resolved brokers: the spec's, or
// an embedded broker's) and how to connect to them.
func (k *Kafka) Cluster(brokers []string) kafkaio.Cluster {
	return kafkaio.Cluster{Brokers: brokers, Security: k.Security()}
}

// Flink configures runner flink.
type Flink struct {
	// Environment is where the job's Go workers run: loopback (the
	// default: in the submitting muon process, which must stay until the
	// job ends; for a laptop) or process (each TaskManager starts muon
	// workers itself, running WorkerCommand: the computation runs on the
	// cluster, and the submitter may leave).
	Environment string `yaml:"environment" enum:"loopback,process"`
	// WorkerCommand is the path of the muon binary on the TaskManagers'
	// machines, for environment process; it must be the submitter's
	// version. Default: this muon's own path (a cluster on this machine).
	WorkerCommand string `yaml:"worker_command"`
	// Parallelism of the job's operators. Default: the job server's.
	Parallelism int `yaml:"parallelism" min:"0"`
	// CheckpointInterval turns Flink's checkpointing on (Beam's
	// checkpointing_interval): an unbounded read's positions are in the
	// checkpoints, and a job restarted after a lost TaskManager resumes
	// from the last one. Default off.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
}

// Source says what the job reads.
type Source struct {
	// Topics to read. Required, except for a train job that reads Archive.
	Topics []string `yaml:"topics"`
	// Archive reads feature rows from Parquet feature archives instead of
	// Kafka (train jobs): a features job's <archive.dir>/features, a
	// date=/hour= partition in it, single files or glob patterns. The rows
	// must have the features section's columns.
	Archive []string `yaml:"archive"`
	// ArchiveFrom and ArchiveTo keep the archive's partitions (hours or
	// days, archive.partition) that overlap [ArchiveFrom, ArchiveTo), RFC
	// 3339; either may be left out. A schedule's window sets both for each
	// run.
	ArchiveFrom time.Time `yaml:"archive_from"`
	ArchiveTo   time.Time `yaml:"archive_to"`
	// Format of the messages: sensor (JSON readings) or image.
	Format string `yaml:"format" required:"true" enum:"sensor,image"`
	// Start is earliest, latest, offsets, timestamp or previous. Default
	// earliest. previous (a bounded train job on one topic): where the
	// data of the model this job last published ends, from the lineage
	// of the newest verified snapshot in snapshot.store (earliest if there
	// is none): incremental retraining on what arrived since.
	Start string `yaml:"start" enum:"earliest,latest,offsets,timestamp,previous"`
	// Offsets maps partition → first offset, for start: offsets.
	Offsets map[int]int64 `yaml:"offsets"`
	// Time is the start time for start: timestamp (RFC 3339).
	Time time.Time `yaml:"time"`
	// Bounded captures the end offsets when the job starts and ends there.
	// Default true; false reads on until the job is stopped or For elapses.
	Bounded *bool `yaml:"bounded"`
	// For, on an unbounded read, stops the source after this long and
	// drains the pipeline. Default: until stopped (SIGINT/SIGTERM).
	For Duration `yaml:"for"`
	// Resume, on an unbounded read on the edge runner, keeps the read's
	// position durable: it is committed to Kafka as consumer group
	// muon.<name>'s offsets once every output made from the records before
	// it has been written, and a restarted job (after a crash, a SIGKILL,
	// a reboot) starts each partition there, where the group has one;
	// Start applies to the others. Default true; false starts at Start
	// every time and commits nothing.
	Resume *bool `yaml:"resume"`
	// CheckpointRecords and CheckpointInterval: an unbounded read
	// checkpoints itself after this many records or this long. Defaults
	// kafkaio.DefaultCheckpointRecords and kafkaio.DefaultCheckpointInterval.
	CheckpointRecords  int      `yaml:"checkpoint_records" min:"0"`
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// IdleTimeout: an idle, caught-up partition's watermark follows the
	// wall clock after this long. Default kafkaio.DefaultIdleTimeout.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// BatchRecords is the most records per fetch batch element. Default
	// kafkaio.DefaultBatchRecords.
	BatchRecords int `yaml:"batch_records" min:"0"`
	// FetchMaxBytes is the most bytes one fetch asks a broker for, and
	// FetchConns how many connections a bounded read fetches a partition
	// with: together they bound the read's buffers (about FetchMaxBytes ×
	// FetchConns per partition being read). Defaults
	// kafkaio.DefaultFetchMaxBytes and kafkaio.DefaultFetchConns; an edge
	// device with little memory lowers them.
	FetchMaxBytes int `yaml:"fetch_max_bytes" min:"0"`
	FetchConns    int `yaml:"fetch_conns" min:"0"`
}

// IsBounded reports whether the source is bounded (the default).
func (s *Source) IsBounded() bool { return s.Bounded == nil || *s.Bounded }

// Resumes reports whether an unbounded read keeps a durable position.
func (s *Source) Resumes() bool { return !s.IsBounded() && (s.Resume == nil || *s.Resume) }

// Decode limits what the decode stage accepts.
type Decode struct {
	// MaxBytes is the largest message accepted; larger ones go to the dead
	// letter. Default message.MaxReadingBytes for sensor readings, the image
	// limits' MaxBytes for images.
	MaxBytes int `yaml:"max_bytes" min:"0"`
	// MaxWidth, MaxHeight and MaxPixels bound image dimensions, checked
	// before any pixel is decoded. Defaults message.DefaultImageLimits.
	MaxWidth  int `yaml:"max_width" min:"0"`
	MaxHeight int `yaml:"max_height" min:"0"`
	MaxPixels int `yaml:"max_pixels" min:"0"`
	// DeadLetterSuffix names each source topic's dead-letter topic.
	// Default kafkaio.DeadLetterSuffix (".dlq").
	DeadLetterSuffix string `yaml:"dead_letter_suffix"`
}

// Features says how decoded records become feature rows (job: features).
type Features struct {
	// Kind is windows (event-time windows per device), cases (one row per
	// device over all its readings: a whole recorded case), readings (one
	// row per reading: tabular samples) or rocket (MiniRocket features of
	// each case's or window's series, see Rocket) for sensor sources,
	// images for image sources. Default windows for sensors, images for
	// images.
	Kind string `yaml:"kind" enum:"windows,cases,readings,images,rocket"`
	// Channels are the reading value names to featurize, in row order.
	// Required for sensor sources.
	Channels []string `yaml:"channels"`
	// Bands is the number of spectral band energies per channel. Default 0.
	Bands int `yaml:"bands" min:"0"`
	// Window sizes the event-time windows of kind windows.
	Window Window `yaml:"window"`
	// Image sizes the images of kind images, and gives a cnn the shape
	// (row-major) of readings rows.
	Image ImageSize `yaml:"image"`
	// Label is how a window or case row takes its label from its
	// readings: majority (the most frequent; ties go to the smallest) or
	// last (the latest reading's, e.g. a remaining useful life). Default
	// majority.
	Label string `yaml:"label" enum:"majority,last"`
	// Relabel maps row labels onto others, e.g. every defect folder onto
	// "defect"; labels it does not list stay as they are.
	Relabel map[string]string `yaml:"relabel"`
	// Rocket configures kind rocket.
	Rocket Rocket `yaml:"rocket"`
}

// Rocket configures MiniRocket features (Dempster et al., KDD 2021): the
// train job fits the transform's biases to its training series and keeps
// it in the model's preprocessing, so serving makes the same features.
type Rocket struct {
	// Over is what a series is: cases (all of a device's readings) or
	// windows (features.window). Default cases.
	Over string `yaml:"over" enum:"cases,windows"`
	// Length is the most values of a channel in a series: longer ones are
	// cut (counted in the summary), shorter ones padded. Required.
	Length int `yaml:"length" min:"0"`
	// Features is how many features to make, rounded down to a multiple
	// of 84. Default featurize.DefaultRocketFeatures.
	Features int `yaml:"features" min:"0"`
	// MaxDilations is the most dilations per kernel. Default
	// featurize.DefaultRocketMaxDilations.
	MaxDilations int `yaml:"max_dilations" min:"0"`
}

// Window configures event-time windows per device.
type Window struct {
	// Size is the length of a window, whole milliseconds. Required for
	// kind windows.
	Size Duration `yaml:"size"`
	// Period is how far apart windows start; shorter than Size makes
	// sliding windows. Default Size (fixed windows).
	Period Duration `yaml:"period"`
	// AllowedLateness is how long a window waits after its end for
	// out-of-order readings; later ones go to the dead letter with stage
	// late. Default 0.
	AllowedLateness Duration `yaml:"allowed_lateness"`
	// MinReadings drops windows with fewer readings, such as the ragged
	// sliding windows at the start and end of a device's recording.
	// Default 0: every window with a reading makes a row.
	MinReadings int `yaml:"min_readings" min:"0"`
}

// ImageSize is the size images are resized to.
type ImageSize struct {
	// Width and Height in pixels. Default featurize.DefaultImageSide.
	Width  int `yaml:"width" min:"1"`
	Height int `yaml:"height" min:"1"`
}

// Batch configures how feature rows become Arrow record batches.
type Batch struct {
	// MaxRows is the most rows in one batch. Default batch.DefaultMaxRows.
	MaxRows int `yaml:"max_rows" min:"0"`
	// MaxWait is the longest a row waits for its batch on an unbounded
	// source. Default batch.DefaultMaxWait.
	MaxWait Duration `yaml:"max_wait"`
	// Shards is how many groups build batches in parallel on a bounded
	// source. Default batch.DefaultShards.
	Shards int `yaml:"shards" min:"0"`
}

// Archive configures the Parquet archive.
type Archive struct {
	// Dir is the archive's root: feature batches under <dir>/features,
	// readings under <dir>/readings, partitioned date=YYYY-MM-DD/hour=HH
	// by event time. Default <output.dir>/archive.
	Dir string `yaml:"dir"`
	// Readings also archives the decoded sensor readings. Default false.
	Readings bool `yaml:"readings"`
	// Features archives an infer job's feature batches too (a features
	// job always does). Default false.
	Features bool `yaml:"features"`
	// Partition is how rows are partitioned by event time: hour
	// (date=YYYY-MM-DD/hour=HH) or day (date=YYYY-MM-DD). A partition gets
	// at least one file per bundle that holds its rows, so a source whose
	// readings are sparse in time, or spread over many hours by their
	// producers, makes fewer and larger files by day. Default hour.
	Partition string `yaml:"partition" enum:"hour,day"`
}

// Model describes the model a train job trains.
type Model struct {
	// Kind is softmax, linear, mlp or cnn. Required for job train.
	Kind string `yaml:"kind" enum:"softmax,linear,mlp,cnn"`
	// Hidden lists the hidden dense layers' widths (mlp: at least one).
	Hidden []int `yaml:"hidden"`
	// Activation of hidden layers: relu or tanh. Default relu.
	Activation string `yaml:"activation" enum:"relu,tanh"`
	// Head of mlp and cnn: softmax (classes) or squared (regression).
	// Default softmax.
	Head string `yaml:"head" enum:"softmax,squared"`
	// Filters lists the output channels of a cnn's 3×3 convolutions.
	Filters []int `yaml:"filters"`
	// Labels are the class names, in class order, for a softmax head.
	// Default: those the replayed recordings declare (a .ts file's
	// @classLabel, an image folder's sub-folders), in their order.
	Labels []string `yaml:"labels"`
}

// Classifies reports whether the model has a softmax head (classes).
func (m *Model) Classifies() bool {
	return m.Kind == "softmax" || (m.Kind != "linear" && m.Head == "softmax")
}

// Training configures data-parallel training.
type Training struct {
	// Epochs to run. Default train.DefaultEpochs.
	Epochs int `yaml:"epochs" min:"0"`
	// BatchSize is the minibatch size. Default train.DefaultBatchSize.
	BatchSize int `yaml:"batch_size" min:"0"`
	// Shards train at once from the same model, averaged every
	// sync_every epochs. Default train.DefaultShards (serial minibatch
	// SGD).
	Shards int `yaml:"shards" min:"0"`
	// SyncEvery is how many epochs each shard trains on its own between
	// two averagings of the shard models (local SGD). Default 0: with one
	// shard, all epochs at once; with several, ⌈epochs/10⌉, so that a job
	// has at most 10 rounds however many epochs it runs.
	SyncEvery int `yaml:"sync_every" min:"0"`
	// Seed of the initial weights and the row order. Default
	// train.DefaultSeed.
	Seed int `yaml:"seed" min:"0"`
	// Patience stops after this many epochs without a lower validation
	// loss, keeping the best epoch's model. Default 0: every epoch runs.
	Patience int `yaml:"patience" min:"0"`
	// Validation is the fraction of rows held out (by a hash of the row
	// id) to measure every epoch; 0 holds out none (no validation
	// metrics, no best epoch). Default train.DefaultValidation.
	Validation float64 `yaml:"validation" min:"0"`
	// SplitBy is what the validation split (and a test fraction) hashes:
	// id (each row on its own) or device (all of a device's rows on one
	// side, for overlapping windows of one recording). Default id.
	SplitBy string `yaml:"split_by" enum:"id,device"`
	// Optimizer is sgd, adam or ridge (a softmax or linear model solved in
	// closed form on one shard, the penalty chosen by leave-one-out error;
	// epochs, learning rate and batch size do not apply). Default
	// models.DefaultOptimizer.
	Optimizer string `yaml:"optimizer" enum:"sgd,adam,ridge"`
	// LearningRate. Default models.DefaultLearningRate of the optimizer.
	LearningRate float64 `yaml:"learning_rate" min:"0"`
	// Momentum of sgd. Default 0.
	Momentum float64 `yaml:"momentum" min:"0"`
	// Nesterov selects Nesterov momentum for sgd. Default false.
	Nesterov bool `yaml:"nesterov"`
	// WeightDecay is the L2 penalty on weights. Default 0.
	WeightDecay float64 `yaml:"weight_decay" min:"0"`
	// Schedule scales the learning rate over the epochs: constant, cosine
	// (half a cosine from the rate down to 0 over all epochs) or step (times
	// step_gamma every step_every epochs). Default constant.
	Schedule string `yaml:"schedule" enum:"constant,cosine,step"`
	// StepEvery and StepGamma shape the step schedule. Defaults
	// models.DefaultStepEvery and models.DefaultStepGamma.
	StepEvery int     `yaml:"step_every" min:"0"`
	StepGamma float64 `yaml:"step_gamma" min:"0"`
	// TargetCap caps the targets of a regression model, e.g. 125 cycles
	// of remaining useful life; test targets too. Default 0: no cap.
	TargetCap float64 `yaml:"target_cap" min:"0"`
	// Test is the held-out test set, measured once with the final model.
	Test Test `yaml:"test"`
	// Stream configures training on an unbounded source.
	Stream Stream `yaml:"stream"`
}

// Stream configures a train job on an unbounded source: every event-time
// window of rows trains the newest published model further and publishes
// the result to <output.dir>/models.
type Stream struct {
	// Window is the length of the event-time windows, e.g. 1m. Required on
	// an unbounded source.
	Window Duration `yaml:"window"`
	// Initial is a bounded train job's model.json: its preprocessing
	// statistics standardize the stream's rows and its parameters start
	// the first window (later windows start from the newest published
	// model). Required on an unbounded source.
	Initial string `yaml:"initial"`
	// Every, when set, also trains and publishes an open window's rows
	// every this much processing time, before the watermark passes the
	// window's end. Needed on Flink (Beam 2.62's portable Flink runner
	// fires event-time windows over a Kafka read only when the read
	// ends). Default: windows fire once, at their end.
	Every Duration `yaml:"every"`
	// Store is the model store each window's model is published to and
	// the next window starts from: a directory, or kafka://<topic> so that
	// workers that share no disk (a Flink cluster) chain through it.
	// Default: kafka://<topic>.windows when snapshot.store is
	// kafka://<topic>, else <output.dir>/models.
	Store string `yaml:"store"`
}

// Test says which rows a train job holds out for its final test: rows
// from other topics or archives, or a seeded fraction of the source's.
// Without any, the job reports no test metrics.
type Test struct {
	// Topics: rows read from these topics, featurized as the source's are,
	// form the test set (replay entries can fill them).
	Topics []string `yaml:"topics"`
	// Archive: rows read from these Parquet feature archive paths form
	// the test set.
	Archive []string `yaml:"archive"`
	// ArchiveFrom and ArchiveTo keep the archive's partitions (hours or
	// days, archive.partition) that overlap [ArchiveFrom, ArchiveTo), RFC
	// 3339; either may be left out. A schedule's window sets both for each
	// run.
	ArchiveFrom time.Time `yaml:"archive_from"`
	ArchiveTo   time.Time `yaml:"archive_to"`
	// Fraction holds out this fraction of the source's rows, chosen by a
	// hash of the training seed and the row id: the same rows for the
	// same seed.
	Fraction float64 `yaml:"fraction" min:"0"`
	// LastPerDevice keeps only each device's latest row of the test set,
	// e.g. the last window of each engine. Default false.
	LastPerDevice bool `yaml:"last_per_device"`
}

// Snapshot is a train job's snapshot section, defined with its stage.
type Snapshot = publish.Spec

// Gate is a train job's quality gate, defined with its stage.
type Gate = publish.Gate

// Output says where results go.
type Output struct {
	// Dir receives the job's files (per-device counts, summary). Default
	// out/<name>.
	Dir string `yaml:"dir"`
}

// Replay is one recording to produce into Kafka before the job starts.
type Replay struct {
	// Path is a .ts or .csv file, or a folder of images.
	Path string `yaml:"path" required:"true"`
	// Topic to produce to. Default: the first source topic.
	Topic string `yaml:"topic"`
	// Rate is records per second; 0 is unlimited. Default 0.
	Rate float64 `yaml:"rate" min:"0"`
	// Start is the event time of the first sample for files without
	// timestamps (and shifts files with them). Default replay.DefaultStart.
	Start time.Time `yaml:"start"`
	// Period between samples for files without timestamps. Default replay.DefaultPeriod.
	Period Duration `yaml:"period"`
	// Live starts the event times at the moment the replay begins instead
	// of at start, and (unless rate is set) produces one record a period,
	// as a device streaming now would: latencies measured from event time
	// then run from when each record was produced. Default false.
	Live bool `yaml:"live"`
	// Exclude lists glob patterns of files to skip in image folders.
	Exclude []string `yaml:"exclude"`
	// Device overrides the device name.
	Device string `yaml:"device"`
	// Format is ts, csv or jsonl for a file whose extension does not say,
	// or cmapss for a NASA C-MAPSS turbofan file (train_FD001.txt), which
	// is never guessed. Default: from the extension.
	Format string `yaml:"format" enum:"ts,csv,jsonl,cmapss"`
	// RUL is the remaining-useful-life file of a C-MAPSS file whose units
	// stop before they fail (RUL_FD001.txt for test_FD001.txt): line i
	// holds unit i's cycles left after its last row. Only with format
	// cmapss. Default: none, each unit fails at its last cycle.
	RUL string `yaml:"rul"`
}

// Branch is one inference branch of an infer job.
type Branch struct {
	// Name names the branch in metrics and the summary. Required.
	Name string `yaml:"name" required:"true"`
	// Store is the model store the branch serves from: the newest version
	// that verifies serves, and a newer one is picked up while the job
	// runs. Required.
	Store string `yaml:"store" required:"true"`
	// Trust are public key files (or folders of .pub files) whose
	// signatures the branch accepts. Required.
	Trust []string `yaml:"trust" required:"true"`
	// Topic is where predictions (or alerts) go. Required.
	Topic string `yaml:"topic" required:"true"`
	// Reload is how often the store is checked for a new version.
	// Default infer.DefaultReload.
	Reload Duration `yaml:"reload"`
	// Alert makes this an alert branch: only rows whose score (or value)
	// crosses the threshold are written.
	Alert *Alert `yaml:"alert"`
}

// Alert is an alert branch's rule.
type Alert struct {
	// Label is the class whose score is compared; empty for a regression
	// model's value.
	Label string `yaml:"label"`
	// Threshold is the score (or value) at or above which a row alerts.
	Threshold float64 `yaml:"threshold"`
	// Below alerts at or below the threshold instead.
	Below bool `yaml:"below"`
}

// Edge is what a job on the edge runner's process may use.
type Edge struct {
	// MemoryLimit is the Go runtime's soft memory limit for the process
	// running the job ("64MiB", "1GiB", or bytes): the collector works
	// harder as the heap nears it and returns freed pages sooner, instead
	// of letting the heap grow to twice what is live. It counts the Go
	// runtime's memory, not the binary's pages (about 30 MiB resident). A
	// GOMEMLIMIT in the environment wins; without either, muon takes its
	// cgroup's memory.max less a tenth, when there is one. Default: none.
	MemoryLimit Bytes `yaml:"memory_limit" min:"0"`
}

// Bytes is a size written as bytes or with a unit: "64MiB", "1.5GiB",
// "100MB", "512KiB", "1048576".
type Bytes int64

// ParseBytes reads a size written as Bytes documents.
func ParseBytes(v string) (Bytes, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	num, mult := strings.TrimSpace(v), 1.0
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(num, "_", ""), 64)
	if err != nil || f < 0 || math.IsNaN(f) || f*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("want a size like 64MiB, 1GiB or a number of bytes, got %q", v)
	}
	return Bytes(f * mult), nil
}

// Duration is a time.Duration written as "1.5s", "250ms", "2m".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// applyDefaults fills what the spec left unset; set reports whether the
// spec (or an override) gave a field, for fields whose zero is a value a
// user may mean (training.validation: 0).
func (s *Spec) applyDefaults(set func(path string) bool) {
	if s.Runner == "" {
		s.Runner = "edge"
	}
	if s.Kafka.Partitions == 0 {
		s.Kafka.Partitions = kafkaio.DefaultPartitions
	}
	if s.Source.Start == "" {
		s.Source.Start = "earliest"
	}
	if s.Decode.DeadLetterSuffix == "" {
		s.Decode.DeadLetterSuffix = kafkaio.DeadLetterSuffix
	}
	if s.Output.Dir == "" {
		s.Output.Dir = "out/" + s.Name
	}
	if s.Job == "" {
		s.Job = "ingest"
	}
	if s.Job == "train" {
		t := &s.Training
		if t.Epochs == 0 {
			t.Epochs = train.DefaultEpochs
		}
		if t.BatchSize == 0 {
			t.BatchSize = train.DefaultBatchSize
		}
		if t.Shards == 0 {
			t.Shards = train.DefaultShards
		}
		if t.Seed == 0 {
			t.Seed = train.DefaultSeed
		}
		if t.Validation == 0 && !set("training.validation") {
			t.Validation = train.DefaultValidation
		}
		if t.Optimizer == "" {
			t.Optimizer = string(models.DefaultOptimizer)
		}
		if t.LearningRate == 0 {
			t.LearningRate = models.DefaultLearningRate(models.OptimizerKind(t.Optimizer))
		}
		if t.Schedule == "" {
			t.Schedule = string(models.Constant)
		}
		if t.StepEvery == 0 {
			t.StepEvery = models.DefaultStepEvery
		}
		if t.StepGamma == 0 {
			t.StepGamma = models.DefaultStepGamma
		}
		s.Snapshot.Defaults(s.Output.Dir)
		if s.Model.Head == "" && (s.Model.Kind == "mlp" || s.Model.Kind == "cnn") {
			s.Model.Head = "softmax"
		}
	}
	if s.Job == "features" || s.Job == "train" || s.Job == "infer" {
		f := &s.Features
		if f.Kind == "" {
			f.Kind = "windows"
			if s.Source.Format == "image" {
				f.Kind = "images"
			}
		}
		if f.Window.Period == 0 {
			f.Window.Period = f.Window.Size
		}
		if f.Kind == "rocket" && f.Rocket.Over == "" {
			f.Rocket.Over = "cases"
		}
		if f.Image.Width == 0 {
			f.Image.Width = featurize.DefaultImageSide
		}
		if f.Image.Height == 0 {
			f.Image.Height = featurize.DefaultImageSide
		}
		if s.Archive.Dir == "" {
			s.Archive.Dir = s.Output.Dir + "/archive"
		}
		if s.Archive.Partition == "" {
			s.Archive.Partition = "hour"
		}
	}
	for i := range s.Replay {
		r := &s.Replay[i]
		if r.Topic == "" && len(s.Source.Topics) > 0 {
			r.Topic = s.Source.Topics[0]
		}
		if r.Start.IsZero() {
			r.Start = replay.DefaultStart
		}
		if r.Period == 0 {
			r.Period = Duration(replay.DefaultPeriod)
		}
	}
}

// MaxNameLength is the longest job or branch name: names become file,
// topic, store and metric names.
const MaxNameLength = 128

// checkName reports whether name can name a job or branch: 1 to
// MaxNameLength letters, digits, '.', '_' and '-', not starting with '.'.
func checkName(name string) error {
	if len(name) > MaxNameLength {
		return fmt.Errorf("a name of %d characters, at most %d", len(name), MaxNameLength)
	}
	if strings.HasPrefix(name, ".") {
		return fmt.Errorf("name %q starts with '.'", name)
	}
	for i, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("name %q has %q at byte %d: use letters, digits, '.', '_' and '-' (it names files, topics and models)", name, c, i)
		}
	}
	return nil
}

// checkNames checks the job's and branches' names and every topic the
// job reads, writes or creates against Kafka's rules, before anything
// starts.
func (s *Spec) checkNames() (string, error) {
	if err := checkName(s.Name); err != nil {
		return "name", err
	}
	for i, b := range s.Inference {
		if err := checkName(b.Name); err != nil {
			return fmt.Sprintf("inference[%d].name", i), err
		}
		if err := kafkaio.CheckTopic(b.Topic); err != nil {
			return fmt.Sprintf("inference[%d].topic", i), err
		}
	}
	for i, t := range s.Source.Topics {
		if err := kafkaio.CheckTopic(t); err != nil {
			return fmt.Sprintf("source.topics[%d]", i), err
		}
		if err := kafkaio.CheckTopic(t + s.Decode.DeadLetterSuffix); err != nil {
			return "decode.dead_letter_suffix", fmt.Errorf("the dead-letter topic of %s: %w", t, err)
		}
	}
	for i, t := range s.Training.Test.Topics {
		if err := kafkaio.CheckTopic(t); err != nil {
			return fmt.Sprintf("training.test.topics[%d]", i), err
		}
	}
	for i, r := range s.Replay {
		if err := kafkaio.CheckTopic(r.Topic); r.Topic != "" && err != nil {
			return fmt.Sprintf("replay[%d].topic", i), err
		}
	}
	return "", nil
}

// check validates what field tags cannot express. It returns the dotted
// path of the offending field and the problem.
func (s *Spec) check() (string, error) {
	if p, err := s.checkNames(); err != nil {
		return p, err
	}
	src := &s.Source
	switch src.Start {
	case "offsets":
		if len(src.Offsets) == 0 {
			return "source.offsets", fmt.Errorf("start: offsets needs at least one partition: offset entry")
		}
		if len(src.Topics) != 1 {
			return "source.topics", fmt.Errorf("start: offsets needs exactly one topic, have %d", len(src.Topics))
		}
	case "timestamp":
		if src.Time.IsZero() {
			return "source.time", fmt.Errorf("start: timestamp needs source.time (RFC 3339, e.g. 2024-01-01T00:00:00Z)")
		}
	case "previous":
		switch {
		case s.Job != "train" || !src.IsBounded():
			return "source.start", fmt.Errorf("start: previous is for a bounded train job: it reads from where its previous model's data ended")
		case len(src.Topics) != 1:
			return "source.topics", fmt.Errorf("start: previous needs exactly one topic, have %d", len(src.Topics))
		case s.Snapshot.Key == "":
			return "snapshot.key", fmt.Errorf("start: previous reads the lineage of the snapshots this job publishes: set snapshot.key (and snapshot.store)")
		}
	}
	if (!src.ArchiveFrom.IsZero() || !src.ArchiveTo.IsZero()) && len(src.Archive) == 0 {
		return "source.archive_from", fmt.Errorf("archive_from and archive_to select partitions of source.archive, which is not set")
	}
	if !src.ArchiveFrom.IsZero() && !src.ArchiveTo.IsZero() && !src.ArchiveFrom.Before(src.ArchiveTo) {
		return "source.archive_to", fmt.Errorf("archive_to %s is not after archive_from %s", src.ArchiveTo.Format(time.RFC3339), src.ArchiveFrom.Format(time.RFC3339))
	}
	for p, off := range src.Offsets {
		if p < 0 || off < 0 {
			return "source.offsets", fmt.Errorf("partition %d offset %d: both must be ≥ 0", p, off)
		}
	}
	switch {
	case len(src.Topics) == 0 && len(src.Archive) == 0:
		return "source.topics", fmt.Errorf("required: name the topics to read (or, for a train job, source.archive)")
	case len(src.Archive) > 0 && s.Job != "train":
		return "source.archive", fmt.Errorf("only a train job reads feature archives; job %s reads topics", s.Job)
	case len(src.Archive) > 0 && len(src.Topics) > 0:
		return "source.archive", fmt.Errorf("read topics or an archive, not both")
	}
	for i, a := range src.Archive {
		if a == "" {
			return fmt.Sprintf("source.archive[%d]", i), fmt.Errorf("empty path")
		}
	}
	if src.IsBounded() && src.For != 0 {
		return "source.for", fmt.Errorf("applies to unbounded sources only (set source.bounded: false)")
	}
	for i, b := range s.Kafka.Brokers {
		if b == "" {
			return fmt.Sprintf("kafka.brokers[%d]", i), fmt.Errorf("empty broker address")
		}
	}
	if p, err := s.Kafka.check(); err != nil {
		return p, err
	}
	for _, d := range []struct {
		path string
		v    Duration
	}{{"source.for", src.For}, {"source.checkpoint_interval", src.CheckpointInterval}, {"source.idle_timeout", src.IdleTimeout}, {"kafka.reconnect_for", s.Kafka.ReconnectFor}} {
		if d.v < 0 {
			return d.path, fmt.Errorf("negative duration %s", d.v)
		}
	}
	if s.Job == "features" || s.Job == "train" || s.Job == "infer" {
		if p, err := s.checkFeatures(); err != nil {
			return p, err
		}
	}
	if p, err := s.checkInference(); err != nil {
		return p, err
	}
	if s.Job == "train" {
		if p, err := s.checkTraining(); err != nil {
			return p, err
		}
	}
	if s.Batch.MaxWait < 0 {
		return "batch.max_wait", fmt.Errorf("negative duration %s", s.Batch.MaxWait)
	}
	for i, r := range s.Replay {
		if r.Period < 0 {
			return fmt.Sprintf("replay[%d].period", i), fmt.Errorf("negative duration %s", r.Period)
		}
		if r.RUL != "" && r.Format != "cmapss" {
			return fmt.Sprintf("replay[%d].rul", i), fmt.Errorf("a remaining-useful-life file needs format: cmapss (never taken from the extension), have %q", r.Format)
		}
	}
	return "", nil
}

// check validates the TLS and SASL settings, and that the files they name
// can be read here (a job submitted to a cluster needs them on the workers
// too).
func (k *Kafka) check() (string, error) {
	if k.TLS == nil && k.SASL == nil {
		return "", nil
	}
	if len(k.Brokers) == 0 {
		p := "kafka.tls"
		if k.TLS == nil {
			p = "kafka.sasl"
		}
		return p, fmt.Errorf("the embedded broker speaks plaintext on loopback only: TLS and SASL are for brokers you name in kafka.brokers")
	}
	if t := k.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			return "kafka.tls", fmt.Errorf("a client certificate needs both cert_file and key_file")
		}
		for _, f := range []struct{ path, file string }{{"kafka.tls.ca_file", t.CAFile}, {"kafka.tls.cert_file", t.CertFile}, {"kafka.tls.key_file", t.KeyFile}} {
			if f.file == "" {
				continue
			}
			if err := readable(f.file); err != nil {
				return f.path, err
			}
		}
	}
	if a := k.SASL; a != nil {
		if a.Password != "" {
			return "kafka.sasl.password", fmt.Errorf("a password never goes in a spec (specs are shared, logged and submitted): put it in a file and name it in kafka.sasl.password_file, or in an environment variable named by kafka.sasl.password_env")
		}
		switch {
		case a.PasswordFile == "" && a.PasswordEnv == "":
			return "kafka.sasl", fmt.Errorf("no password: name its file (password_file) or its environment variable (password_env)")
		case a.PasswordFile != "" && a.PasswordEnv != "":
			return "kafka.sasl", fmt.Errorf("password_file and password_env both set: name one")
		case a.PasswordFile != "":
			if err := readable(a.PasswordFile); err != nil {
				return "kafka.sasl.password_file", err
			}
		default:
			if v, ok := os.LookupEnv(a.PasswordEnv); !ok || v == "" {
				return "kafka.sasl.password_env", fmt.Errorf("the environment variable %s is unset or empty", a.PasswordEnv)
			}
		}
	}
	if err := k.Security().Check(); err != nil {
		return "kafka", err
	}
	return "", nil
}

// readable reports why a file cannot be read, if it cannot.
func readable(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	return f.Close()
}

// checkFeatures validates the features section of a features job.
func (s *Spec) checkFeatures() (string, error) {
	f := &s.Features
	if s.Source.Format == "image" {
		if f.Kind != "images" {
			return "features.kind", fmt.Errorf("%s rows need a sensor source; an image source makes kind images", f.Kind)
		}
		if f.Image.Width*f.Image.Height > 1<<24 {
			return "features.image", fmt.Errorf("%d × %d pixels is more than 16777216 features a row", f.Image.Width, f.Image.Height)
		}
		if s.Archive.Readings {
			return "archive.readings", fmt.Errorf("an image source has no readings to archive")
		}
		return "", nil
	}
	if f.Kind == "images" {
		return "features.kind", fmt.Errorf("images need source.format: image")
	}
	if len(f.Channels) == 0 {
		return "features.channels", fmt.Errorf("name the reading values to featurize, e.g. [x, y, z]")
	}
	seen := map[string]bool{}
	for i, c := range f.Channels {
		if c == "" || seen[c] {
			return fmt.Sprintf("features.channels[%d]", i), fmt.Errorf("empty or repeated channel %q", c)
		}
		seen[c] = true
	}
	if f.Kind == "readings" {
		if f.Label != "" {
			return "features.label", fmt.Errorf("a readings row has one reading's label; label applies to windows and cases")
		}
		return "", nil
	}
	if f.Kind == "rocket" {
		switch {
		case f.Rocket.Length < 1:
			return "features.rocket.length", fmt.Errorf("give the most values of a channel in a series, e.g. the longest case's length")
		case f.Rocket.Length*len(f.Channels) > 1<<22:
			return "features.rocket.length", fmt.Errorf("%d channels of %d values is more than 4194304 values a row", len(f.Channels), f.Rocket.Length)
		case f.Rocket.Features != 0 && f.Rocket.Features < 84:
			return "features.rocket.features", fmt.Errorf("%d: MiniRocket makes a multiple of 84 features, at least 84", f.Rocket.Features)
		case f.Bands != 0:
			return "features.bands", fmt.Errorf("MiniRocket makes its own features; bands apply to kinds windows and cases")
		}
		if f.Rocket.Over != "windows" {
			if !s.Source.IsBounded() {
				return "features.rocket.over", fmt.Errorf("cases need all of a device's readings: set source.bounded: true, or over: windows on a stream")
			}
			return "", nil
		}
	} else if f.Rocket != (Rocket{}) {
		return "features.rocket", fmt.Errorf("applies to kind rocket; kind is %s", f.Kind)
	}
	if f.Kind == "cases" {
		if !s.Source.IsBounded() {
			return "features.kind", fmt.Errorf("cases need all of a device's readings: set source.bounded: true, or use kind windows on a stream")
		}
		return "", nil
	}
	w := f.Window
	switch {
	case w.Size <= 0:
		return "features.window.size", fmt.Errorf("windows need a positive size, e.g. 2s")
	case w.Size.D()%time.Millisecond != 0:
		return "features.window.size", fmt.Errorf("%s is not a whole number of milliseconds", w.Size)
	case w.Period <= 0 || w.Period.D()%time.Millisecond != 0:
		return "features.window.period", fmt.Errorf("%s must be a positive whole number of milliseconds", w.Period)
	case w.Period > w.Size:
		return "features.window.period", fmt.Errorf("%s is longer than the window size %s; windows would leave readings out", w.Period, w.Size)
	case w.AllowedLateness < 0:
		return "features.window.allowed_lateness", fmt.Errorf("negative duration %s", w.AllowedLateness)
	}

	return "", nil
}

// checkTest validates the training.test section.
func (s *Spec) checkTest() (string, error) {
	t := &s.Training.Test
	given := 0
	for _, set := range []bool{len(t.Topics) > 0, len(t.Archive) > 0, t.Fraction > 0} {
		if set {
			given++
		}
	}
	switch {
	case given > 1:
		return "training.test", fmt.Errorf("give one of topics, archive or fraction")
	case t.Fraction >= 1:
		return "training.test.fraction", fmt.Errorf("%v holds out every row; use a fraction below 1", t.Fraction)
	case t.LastPerDevice && given == 0:
		return "training.test.last_per_device", fmt.Errorf("there is no test set: give topics, archive or fraction")
	case len(t.Topics) > 0 && len(s.Source.Topics) == 0:
		return "training.test.topics", fmt.Errorf("the source reads an archive; give training.test.archive")
	}
	for i, tt := range t.Topics {
		if tt == "" {
			return fmt.Sprintf("training.test.topics[%d]", i), fmt.Errorf("empty topic name")
		}
		for _, st := range s.Source.Topics {
			if tt == st {
				return fmt.Sprintf("training.test.topics[%d]", i), fmt.Errorf("%q is also a source topic: the test set would be trained on", tt)
			}
		}
	}
	for i, a := range t.Archive {
		if a == "" {
			return fmt.Sprintf("training.test.archive[%d]", i), fmt.Errorf("empty path")
		}
	}
	return "", nil
}

// checkTraining validates the model and training sections of a train job.
func (s *Spec) checkTraining() (string, error) {
	m, t := &s.Model, &s.Training
	switch {
	case m.Kind == "":
		return "model.kind", fmt.Errorf("a train job names its model: softmax, linear, mlp or cnn")
	case !s.Source.IsBounded() && t.Stream.Window <= 0:
		return "training.stream.window", fmt.Errorf("training on a stream needs a positive window, e.g. 1m (or set source.bounded: true)")
	case t.Stream.Every < 0:
		return "training.stream.every", fmt.Errorf("negative duration %s", t.Stream.Every)
	case !s.Source.IsBounded() && t.Stream.Initial == "":
		return "training.stream.initial", fmt.Errorf("training on a stream starts from a bounded job's model.json, which also standardizes the rows")
	case !s.Source.IsBounded() && (len(t.Test.Topics) > 0 || len(t.Test.Archive) > 0 || t.Test.Fraction > 0 || t.Patience > 0):
		return "training.test", fmt.Errorf("a stream has no end to test or stop at; each window's model is published")
	case s.Source.IsBounded() && t.Stream != Stream{}:
		return "training.stream", fmt.Errorf("applies to unbounded sources only (set source.bounded: false)")
	case m.Kind == "mlp" && len(m.Hidden) == 0:
		return "model.hidden", fmt.Errorf("an mlp needs at least one hidden layer, e.g. [100]")
	case m.Kind == "cnn" && len(m.Filters) == 0:
		return "model.filters", fmt.Errorf("a cnn needs filters, e.g. [8, 16]")
	case m.Kind == "cnn" && s.Features.Kind == "readings" && s.Features.Image.Width*s.Features.Image.Height != len(s.Features.Channels):
		return "features.image", fmt.Errorf("a cnn sees a readings row as an image: width × height (%d × %d) must be the %d channels", s.Features.Image.Width, s.Features.Image.Height, len(s.Features.Channels))
	case m.Kind == "cnn" && s.Features.Kind != "images" && s.Features.Kind != "readings":
		return "model.kind", fmt.Errorf("a cnn needs image rows (features.kind: images, or readings shaped by features.image)")
	case t.Validation >= 1:
		return "training.validation", fmt.Errorf("%v holds out every row; use a fraction below 1", t.Validation)
	case t.StepGamma > 1:
		return "training.step_gamma", fmt.Errorf("%v would raise the rate; use a factor in (0, 1]", t.StepGamma)
	case t.Nesterov && (t.Optimizer != "sgd" || t.Momentum == 0):
		return "training.nesterov", fmt.Errorf("nesterov momentum needs optimizer sgd with a momentum")
	case t.Optimizer == "sgd" && t.Momentum >= 1:
		return "training.momentum", fmt.Errorf("momentum %v must be below 1", t.Momentum)
	case t.Patience > 0 && t.Validation == 0 && s.Source.IsBounded():
		return "training.patience", fmt.Errorf("early stopping watches the validation loss, and validation: 0 holds out no rows; hold some out or remove patience")
	case t.Optimizer == "ridge" && m.Kind != "softmax" && m.Kind != "linear":
		return "training.optimizer", fmt.Errorf("ridge solves a softmax or linear model in closed form; model.kind is %s", m.Kind)
	case t.Optimizer == "ridge" && (t.Shards > 1 || t.SyncEvery > 0):
		return "training.shards", fmt.Errorf("ridge solves once on all the rows: one shard")
	case t.Optimizer == "ridge" && t.Patience > 0:
		return "training.patience", fmt.Errorf("ridge solves once; there are no epochs to stop early")
	case t.Optimizer == "ridge" && !s.Source.IsBounded():
		return "training.optimizer", fmt.Errorf("ridge solves on all the rows of a bounded source; on a stream train with sgd or adam")
	case t.Optimizer == "ridge" && s.Snapshot.FineTune > 0:
		return "snapshot.fine_tune", fmt.Errorf("fine-tuning takes optimizer steps; a ridge model has none (prune without fine_tune)")
	}
	if p, err := s.checkTest(); err != nil {
		return p, err
	}
	if sn := s.Snapshot; sn != (Snapshot{}) {
		switch {
		case sn.Key == "":
			return "snapshot.key", fmt.Errorf("a snapshot is signed: name the private key file (muon models keygen)")
		case !s.Source.IsBounded() && sn.Prune > 0:
			return "snapshot.prune", fmt.Errorf("a train job on a stream has no rows to fine-tune a pruned window model on; prune in a bounded job")
		case !s.Source.IsBounded() && (sn.Gate.Min > 0 || sn.Gate.Max > 0):
			return "snapshot.gate", fmt.Errorf("a train job on a stream has no held-out rows to gate a window's model on; remove the gate")
		case sn.Prune >= 1:
			return "snapshot.prune", fmt.Errorf("%v prunes every weight; use a fraction below 1", sn.Prune)
		case sn.Bits > 8:
			return "snapshot.bits", fmt.Errorf("%d-bit codes: shared weights take 1 to 8 bits", sn.Bits)
		case sn.Bits > 0 && sn.Weights != "shared":
			return "snapshot.bits", fmt.Errorf("the width of shared weights' codes; weights are %s", sn.Weights)
		}
	}
	classify := m.Classifies()
	if classify && len(m.Labels) == 1 {
		return "model.labels", fmt.Errorf("a classifier names its classes, at least two, e.g. [\"0\", \"1\"] (or none, to take them from the replayed recordings)")
	}
	if !classify && len(m.Labels) > 0 {
		return "model.labels", fmt.Errorf("a regression model has no classes; a row's label is its target")
	}
	if classify && t.TargetCap > 0 {
		return "training.target_cap", fmt.Errorf("caps regression targets; a classifier's labels are classes")
	}
	seen := map[string]bool{}
	for i, l := range m.Labels {
		if seen[l] {
			return fmt.Sprintf("model.labels[%d]", i), fmt.Errorf("repeated class %q", l)
		}
		seen[l] = true
	}
	return "", nil
}

// checkInference validates the inference branches of an infer job, or of
// a train job on a stream (which scores its rows beside training on
// them).
func (s *Spec) checkInference() (string, error) {
	streamTrain := s.Job == "train" && !s.Source.IsBounded()
	if s.Job != "infer" {
		if len(s.Inference) > 0 && !streamTrain {
			return "inference", fmt.Errorf("only an infer job, or a train job on a stream, has inference branches; job is %s", s.Job)
		}
		if len(s.Inference) == 0 {
			return "", nil
		}
	}
	if len(s.Inference) == 0 {
		return "inference", fmt.Errorf("an infer job needs at least one branch (name, store, trust, topic)")
	}
	names, topics := map[string]bool{}, map[string]bool{}
	for i, b := range s.Inference {
		at := fmt.Sprintf("inference[%d]", i)
		switch {
		case names[b.Name]:
			return at + ".name", fmt.Errorf("repeated branch name %q", b.Name)
		case topics[b.Topic]:
			return at + ".topic", fmt.Errorf("topic %q is another branch's: each branch writes its own topic", b.Topic)
		case slices.Contains(s.Source.Topics, b.Topic):
			return at + ".topic", fmt.Errorf("topic %q is a source topic", b.Topic)
		case b.Reload < 0:
			return at + ".reload", fmt.Errorf("negative duration %s", b.Reload)
		}
		for j, t := range b.Trust {
			if t == "" {
				return fmt.Sprintf("%s.trust[%d]", at, j), fmt.Errorf("empty path")
			}
		}
		names[b.Name], topics[b.Topic] = true, true
	}
	return "", nil
}
