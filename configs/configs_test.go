package configs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/producer/replay"
)

// Every example spec in this folder must load.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example specs found: %v", err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			s, err := configs.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name == "" || len(s.Source.Topics) == 0 {
				t.Errorf("%s loaded without name or topics: %+v", f, s)
			}
		})
	}
}

const base = `name: t
source:
  topics: [a]
  format: sensor
`

func TestErrors(t *testing.T) {
	tests := []struct {
		name      string
		spec      string
		overrides []string
		want      error
		line      int
		path      string
	}{
		{"unknown top-level field", base + "sourse: {}\n", nil, configs.ErrUnknownField, 5, "sourse"},
		{"unknown nested field", "name: t\nsource:\n  topics: [a]\n  format: sensor\n  strat: earliest\n", nil, configs.ErrUnknownField, 5, "source.strat"},
		{"wrong type list", "name: t\nsource:\n  topics: {a: 1}\n  format: sensor\n", nil, configs.ErrType, 3, "source.topics"},
		{"wrong type int", base + "kafka:\n  partitions: four\n", nil, configs.ErrType, 6, "kafka.partitions"},
		{"wrong type duration", "name: t\nsource:\n  topics: [a]\n  format: sensor\n  bounded: false\n  for: 10 minutes\n", nil, configs.ErrType, 6, "source.for"},
		{"missing required", "name: t\nsource:\n  topics: [a]\n", nil, configs.ErrRequired, 2, "source.format"},
		{"missing section", "name: t\n", nil, configs.ErrRequired, 1, "source"},
		{"bad enum", "name: t\nsource:\n  topics: [a]\n  format: video\n", nil, configs.ErrValue, 4, "source.format"},
		{"below min", base + "kafka:\n  partitions: 0\n", nil, configs.ErrValue, 6, "kafka.partitions"},
		{"wrong type size", base + "edge:\n  memory_limit: 64 apples\n", nil, configs.ErrType, 6, "edge.memory_limit"},
		{"size as a mapping", base + "edge:\n  memory_limit: {MiB: 64}\n", nil, configs.ErrType, 6, "edge.memory_limit"},
		{"negative size", base, []string{"edge.memory_limit=-1MiB"}, configs.ErrType, 0, "edge.memory_limit"},
		{"offsets without map", base + "  start: offsets\n", nil, configs.ErrValue, 0, "source.offsets"},
		{"for on bounded", base + "  for: 10s\n", nil, configs.ErrValue, 5, "source.for"},
		{"bad override syntax", base, []string{"kafka.brokers"}, configs.ErrOverride, 0, ""},
		{"override unknown field", base, []string{"kafka.brokerz=[x:1]"}, configs.ErrUnknownField, 0, "kafka.brokerz"},
		{"override wrong type", base, []string{"kafka.partitions=lots"}, configs.ErrType, 0, "kafka.partitions"},
		{"not yaml", "name: [\n", nil, nil, 0, ""},
		{"not a mapping", "- a\n- b\n", nil, configs.ErrType, 1, ""},
		{"second document", base + "---\nname: other\n", nil, configs.ErrValue, 5, ""},
		{"second document after an empty one", base + "---\n---\nname: other\n", nil, configs.ErrValue, 6, ""},
		{"password in the spec", base + "kafka:\n  brokers: [k:9093]\n  sasl:\n    mechanism: PLAIN\n    username: u\n    password: hunter2\n", nil, configs.ErrValue, 10, "kafka.sasl.password"},
		{"sasl without a password", base + "kafka:\n  brokers: [k:9093]\n  sasl: {mechanism: PLAIN, username: u}\n", nil, configs.ErrValue, 7, "kafka.sasl"},
		{"sasl mechanism unknown", base + "kafka:\n  brokers: [k:9093]\n  sasl: {mechanism: GSSAPI, username: u, password_env: HOME}\n", nil, configs.ErrValue, 0, "kafka.sasl.mechanism"},
		{"sasl password env unset", base + "kafka:\n  brokers: [k:9093]\n  sasl: {mechanism: PLAIN, username: u, password_env: MUON_TEST_NO_SUCH_VAR}\n", nil, configs.ErrValue, 0, "kafka.sasl.password_env"},
		{"tls ca file missing", base + "kafka:\n  brokers: [k:9093]\n  tls: {ca_file: /no/such/ca.pem}\n", nil, configs.ErrValue, 0, "kafka.tls.ca_file"},
		{"tls cert without key", base + "kafka:\n  brokers: [k:9093]\n  tls: {cert_file: spec.yaml}\n", nil, configs.ErrValue, 7, "kafka.tls"},
		{"tls on the embedded broker", base + "kafka:\n  tls: {}\n", nil, configs.ErrValue, 6, "kafka.tls"},
		{"features without channels", base + "job: features\nfeatures:\n  window: {size: 2s}\n", nil, configs.ErrValue, 0, "features.channels"},
		{"repeated channel", base + "job: features\nfeatures:\n  channels: [x, x]\n  window: {size: 2s}\n", nil, configs.ErrValue, 0, "features.channels[1]"},
		{"windows without size", base + "job: features\nfeatures:\n  channels: [x]\n", nil, configs.ErrValue, 0, "features.window.size"},
		{"window size below a millisecond", base + "job: features\nfeatures:\n  channels: [x]\n  window:\n    size: 1500us\n", nil, configs.ErrValue, 9, "features.window.size"},
		{"period longer than size", base + "job: features\nfeatures:\n  channels: [x]\n  window:\n    size: 1s\n    period: 2s\n", nil, configs.ErrValue, 10, "features.window.period"},
		{"negative lateness", base + "job: features\nfeatures:\n  channels: [x]\n  window:\n    size: 1s\n    allowed_lateness: -1s\n", nil, configs.ErrValue, 10, "features.window.allowed_lateness"},
		{"cases on a stream", base + "  bounded: false\njob: features\nfeatures:\n  kind: cases\n  channels: [x]\n", nil, configs.ErrValue, 8, "features.kind"},
		{"images from sensors", base + "job: features\nfeatures:\n  kind: images\n", nil, configs.ErrValue, 7, "features.kind"},
		{"image size zero", "name: t\nsource:\n  topics: [a]\n  format: image\njob: features\nfeatures:\n  image: {width: 0, height: 8}\n", nil, configs.ErrValue, 7, "features.image.width"},
		{"bad job", base + "job: train-all\n", nil, configs.ErrValue, 5, "job"},
		{"train without model", base + "job: train\nfeatures: {kind: cases, channels: [x]}\n", nil, configs.ErrValue, 0, "model.kind"},
		{"classifier with one label", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a]}\n", nil, configs.ErrValue, 0, "model.labels"},
		{"mlp without hidden layers", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: mlp, labels: [a, b]}\n", nil, configs.ErrValue, 0, "model.hidden"},
		{"regression with labels", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: linear, labels: [a, b]}\n", nil, configs.ErrValue, 0, "model.labels"},
		{"cnn on sensor rows", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: cnn, filters: [8], labels: [a, b]}\n", nil, configs.ErrValue, 0, "model.kind"},
		{"cnn without filters", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: cnn, labels: [a, b]}\n", nil, configs.ErrValue, 0, "model.filters"},
		{"cnn on readings of another shape", base + "job: train\nfeatures: {kind: readings, channels: [a, b, c], image: {width: 2, height: 2}}\nmodel: {kind: cnn, filters: [8], labels: [a, b]}\n", nil, configs.ErrValue, 0, "features.image"},
		{"test twice", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {test: {topics: [t], fraction: 0.2}}\n", nil, configs.ErrValue, 0, "training.test"},
		{"test topic is a source topic", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {test: {topics: [a]}}\n", nil, configs.ErrValue, 0, "training.test.topics[0]"},
		{"test fraction 1", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {test: {fraction: 1}}\n", nil, configs.ErrValue, 0, "training.test.fraction"},
		{"last per device of nothing", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {test: {last_per_device: true}}\n", nil, configs.ErrValue, 0, "training.test.last_per_device"},
		{"cap on a classifier", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {target_cap: 125}\n", nil, configs.ErrValue, 0, "training.target_cap"},
		{"nesterov with adam", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {nesterov: true}\n", nil, configs.ErrValue, 0, "training.nesterov"},
		{"archive and topics", "name: t\nsource: {topics: [a], archive: [x], format: sensor}\njob: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\n", nil, configs.ErrValue, 0, "source.archive"},
		{"archive in a features job", "name: t\nsource: {archive: [x], format: sensor}\njob: features\nfeatures: {kind: cases, channels: [x]}\n", nil, configs.ErrValue, 0, "source.archive"},
		{"archive partition by week", base + "job: features\nfeatures: {kind: cases, channels: [x]}\narchive: {partition: week}\n", nil, configs.ErrValue, 0, "archive.partition"},
		{"rocket without a length", base + "job: train\nfeatures: {kind: rocket, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\n", nil, configs.ErrValue, 0, "features.rocket.length"},
		{"rocket with bands", base + "job: train\nfeatures: {kind: rocket, channels: [x], bands: 4, rocket: {length: 10}}\nmodel: {kind: softmax, labels: [a, b]}\n", nil, configs.ErrValue, 0, "features.bands"},
		{"rocket of 50 features", base + "job: train\nfeatures: {kind: rocket, channels: [x], rocket: {length: 10, features: 50}}\nmodel: {kind: softmax, labels: [a, b]}\n", nil, configs.ErrValue, 0, "features.rocket.features"},
		{"rocket section on cases", base + "job: train\nfeatures: {kind: cases, channels: [x], rocket: {length: 10}}\nmodel: {kind: softmax, labels: [a, b]}\n", nil, configs.ErrValue, 0, "features.rocket"},
		{"rocket over windows without a size", base + "job: train\nfeatures: {kind: rocket, channels: [x], rocket: {length: 10, over: windows}}\nmodel: {kind: softmax, labels: [a, b]}\n", nil, configs.ErrValue, 0, "features.window.size"},
		{"patience without validation", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {patience: 3, validation: 0}\n", nil, configs.ErrValue, 0, "training.patience"},
		{"shared weights of 9 bits", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\nsnapshot: {key: k, weights: shared, bits: 9}\n", nil, configs.ErrValue, 0, "snapshot.bits"},
		{"bits of int8 weights", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\nsnapshot: {key: k, bits: 4}\n", nil, configs.ErrValue, 0, "snapshot.bits"},
		{"ridge mlp", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: mlp, hidden: [3], labels: [a, b]}\ntraining: {optimizer: ridge}\n", nil, configs.ErrValue, 0, "training.optimizer"},
		{"ridge on shards", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {optimizer: ridge, shards: 2}\n", nil, configs.ErrValue, 0, "training.shards"},
		{"ridge with patience", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {optimizer: ridge, patience: 3}\n", nil, configs.ErrValue, 0, "training.patience"},
		{"no topics", "name: t\nsource: {format: sensor}\n", nil, configs.ErrValue, 0, "source.topics"},
		{"stream without window", "name: t\nsource: {topics: [a], format: sensor, bounded: false}\njob: train\nfeatures: {channels: [x], window: {size: 1s}}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {stream: {initial: m.json}}\n", nil, configs.ErrValue, 0, "training.stream.window"},
		{"stream without initial model", "name: t\nsource: {topics: [a], format: sensor, bounded: false}\njob: train\nfeatures: {channels: [x], window: {size: 1s}}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {stream: {window: 1m}}\n", nil, configs.ErrValue, 0, "training.stream.initial"},
		{"stream with a test set", "name: t\nsource: {topics: [a], format: sensor, bounded: false}\njob: train\nfeatures: {channels: [x], window: {size: 1s}}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {stream: {window: 1m, initial: m.json}, test: {fraction: 0.2}}\n", nil, configs.ErrValue, 0, "training.test"},
		{"stream section on a bounded source", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {stream: {window: 1m}}\n", nil, configs.ErrValue, 0, "training.stream"},
		{"label last on readings", base + "job: features\nfeatures: {kind: readings, channels: [x], label: last}\n", nil, configs.ErrValue, 0, "features.label"},
		{"all rows held out", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {validation: 1}\n", nil, configs.ErrValue, 0, "training.validation"},
		{"infer without branches", base + "job: infer\nfeatures: {kind: readings, channels: [x]}\n", nil, configs.ErrValue, 0, "inference"},
		{"branch without trust", base + "job: infer\nfeatures: {kind: readings, channels: [x]}\ninference:\n  - {name: a, store: s, topic: p}\n", nil, configs.ErrRequired, 0, "inference[0].trust"},
		{"branches on one topic", base + "job: infer\nfeatures: {kind: readings, channels: [x]}\ninference:\n  - {name: a, store: s, trust: [k], topic: p}\n  - {name: b, store: s, trust: [k], topic: p}\n", nil, configs.ErrValue, 0, "inference[1].topic"},
		{"predictions to the source", base + "job: infer\nfeatures: {kind: readings, channels: [x]}\ninference:\n  - {name: a, store: s, trust: [k], topic: a}\n", nil, configs.ErrValue, 0, "inference[0].topic"},
		{"pruned snapshots on a stream", "name: t\nsource: {topics: [a], format: sensor, bounded: false}\njob: train\nfeatures: {kind: readings, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {stream: {window: 1m, initial: m.json}}\nsnapshot: {key: k, prune: 0.5}\n", nil, configs.ErrValue, 0, "snapshot.prune"},
		{"gated snapshots on a stream", "name: t\nsource: {topics: [a], format: sensor, bounded: false}\njob: train\nfeatures: {kind: readings, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {stream: {window: 1m, initial: m.json}}\nsnapshot: {key: k, gate: {min: 0.9}}\n", nil, configs.ErrValue, 0, "snapshot.gate"},
		{"negative every", "name: t\nsource: {topics: [a], format: sensor, bounded: false}\njob: train\nfeatures: {kind: readings, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {stream: {window: 1m, initial: m.json, every: -1s}}\n", nil, configs.ErrValue, 0, "training.stream.every"},
		{"branches of a stream on one topic", "name: t\nsource: {topics: [a], format: sensor, bounded: false}\njob: train\nfeatures: {kind: readings, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ntraining: {stream: {window: 1m, initial: m.json}}\ninference:\n  - {name: a, store: s, trust: [k], topic: p}\n  - {name: b, store: s, trust: [k], topic: p}\n", nil, configs.ErrValue, 0, "inference[1].topic"},
		{"branches on a bounded train job", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\ninference:\n  - {name: a, store: s, trust: [k], topic: p}\n", nil, configs.ErrValue, 0, "inference"},
		{"branches on a features job", base + "job: features\nfeatures: {kind: readings, channels: [x]}\ninference:\n  - {name: a, store: s, trust: [k], topic: p}\n", nil, configs.ErrValue, 0, "inference"},
		// Issue 15 item 12: each fails before anything starts.
		{"learning rate NaN", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\n", []string{"training.learning_rate=nan"}, configs.ErrValue, 0, "training.learning_rate"},
		{"gate min NaN", base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\nsnapshot: {key: k, gate: {min: .nan}}\n", nil, configs.ErrValue, 8, "snapshot.gate.min"},
		{"rate infinite", base + "replay: [{path: p, rate: .inf}]\n", nil, configs.ErrValue, 5, "replay[0].rate"},
		{"a million partitions", base, []string{"kafka.partitions=1000000"}, configs.ErrValue, 0, "kafka.partitions"},
		{"topic as a path", base, []string{"source.topics=[../../etc/passwd]"}, configs.ErrValue, 0, "source.topics[0]"},
		{"topic too long", base, []string{"source.topics=[" + strings.Repeat("t", 250) + "]"}, configs.ErrValue, 0, "source.topics[0]"},
		{"dead letter suffix with a slash", base + "decode: {dead_letter_suffix: /dlq}\n", nil, configs.ErrValue, 0, "decode.dead_letter_suffix"},
		{"replay topic with a space", base + "replay: [{path: p, topic: a b}]\n", nil, configs.ErrValue, 0, "replay[0].topic"},
		{"name with a slash", base, []string{"name=a/b"}, configs.ErrValue, 0, "name"},
		{"name starting with a dot", base, []string{"name=.hidden"}, configs.ErrValue, 0, "name"},
		{"branch name with a slash", base + "job: infer\nfeatures: {kind: readings, channels: [x]}\ninference:\n  - {name: a/b, store: s, trust: [k], topic: p}\n", nil, configs.ErrValue, 0, "inference[0].name"},
		{"branch topic with a colon", base + "job: infer\nfeatures: {kind: readings, channels: [x]}\ninference:\n  - {name: a, store: s, trust: [k], topic: 'p:q'}\n", nil, configs.ErrValue, 0, "inference[0].topic"},
		{"training on a stream", base + "  bounded: false\njob: train\nfeatures: {kind: windows, channels: [x], window: {size: 1s}}\nmodel: {kind: softmax, labels: [a, b]}\n", nil, configs.ErrValue, 0, "training.stream.window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := configs.Parse("spec.yaml", []byte(tt.spec), tt.overrides...)
			if err == nil {
				t.Fatal("loaded, want an error")
			}
			var ce *configs.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *configs.Error", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %q, want %v", err, tt.want)
			}
			if tt.line != 0 && ce.Line != tt.line {
				t.Errorf("error %q at line %d, want line %d", err, ce.Line, tt.line)
			}
			if ce.Path != tt.path {
				t.Errorf("error %q at path %q, want %q", err, ce.Path, tt.path)
			}
			if !strings.HasPrefix(err.Error(), "spec.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestDefaultsAndOverrides(t *testing.T) {
	spec := base + "replay:\n  - path: x.ts\n"
	s, err := configs.Parse("spec.yaml", []byte(spec),
		"kafka.brokers=[127.0.0.1:9092, 127.0.0.1:9093]",
		"replay.0.rate=250",
		"source.bounded=false",
		"source.for=30s",
		"decode.max_bytes=2048",
		"edge.memory_limit=64MiB",
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Kafka.Brokers; len(got) != 2 || got[1] != "127.0.0.1:9093" {
		t.Errorf("brokers %v", got)
	}
	if s.Replay[0].Rate != 250 || s.Replay[0].Topic != "a" || s.Replay[0].Period.D() != replay.DefaultPeriod {
		t.Errorf("replay %+v", s.Replay[0])
	}
	if s.Source.IsBounded() || s.Source.For.D() != 30*time.Second || s.Decode.MaxBytes != 2048 {
		t.Errorf("source %+v decode %+v", s.Source, s.Decode)
	}
	if s.Edge.MemoryLimit != 64<<20 {
		t.Errorf("edge.memory_limit %d, want 64 MiB", s.Edge.MemoryLimit)
	}
	if s.Runner != "edge" || s.Kafka.Partitions != kafkaio.DefaultPartitions || s.Source.Start != "earliest" || s.Output.Dir != "out/t" {
		t.Errorf("defaults not applied: %+v", s)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := configs.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want a not-exist error", err)
	}
}

// FuzzParse: no spec, however malformed, panics the loader.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base), "kafka.partitions=3")
	f.Add([]byte("name: [\n"), "")
	f.Add([]byte(base+"source:\n  offsets: {0: 5}\n"), "replay.0.rate=1")
	f.Fuzz(func(t *testing.T, data []byte, override string) {
		var ov []string
		if override != "" {
			ov = []string{override}
		}
		_, _ = configs.Parse("fuzz.yaml", data, ov...)
	})
}

func TestOverrideErrorsPointAtSet(t *testing.T) {
	_, err := configs.Parse("spec.yaml", []byte(base), "source.format=video")
	if err == nil || !strings.Contains(err.Error(), "spec.yaml (--set): source.format") {
		t.Errorf("error %v does not point at --set", err)
	}
}

func TestTrailingDocumentMarkerIsFine(t *testing.T) {
	if _, err := configs.Parse("spec.yaml", []byte(base+"---\n")); err != nil {
		t.Errorf("a spec ending in an empty document: %v", err)
	}
}

// training.validation: 0 holds out nothing; only an unset one takes the
// default (issue 16 item 3).
func TestValidationZeroIsHonoured(t *testing.T) {
	train := base + "job: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\n"
	for _, tc := range []struct {
		spec      string
		overrides []string
		want      float64
	}{
		{train, nil, 0.2},
		{train + "training: {validation: 0}\n", nil, 0},
		{train, []string{"training.validation=0"}, 0},
		{train + "training: {validation: 0.3}\n", nil, 0.3},
	} {
		s, err := configs.Parse("spec.yaml", []byte(tc.spec), tc.overrides...)
		if err != nil {
			t.Fatal(err)
		}
		if s.Training.Validation != tc.want {
			t.Errorf("%q %v: validation %v, want %v", tc.spec, tc.overrides, s.Training.Validation, tc.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]configs.Bytes{
		"1048576": 1 << 20, "64MiB": 64 << 20, "64 MiB": 64 << 20, "1.5GiB": 3 << 29,
		"100MB": 100e6, "512KiB": 512 << 10, "2kB": 2000, "10B": 10, "1_000": 1000, "0": 0,
	} {
		if got, err := configs.ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "64 apples", "-1", "NaN", "1e30GiB", "64Mi"} {
		if got, err := configs.ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
		}
	}
}
