package jobs

import (
	"reflect"
	"testing"
	"time"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
)

func TestSourceParams(t *testing.T) {
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		spec string
		want kafkaio.Params
	}{
		{"bounded from earliest", "name: x\nsource:\n  topics: [a, b]\n  format: sensor\n",
			kafkaio.Params{Brokers: []string{"k:9092"}, Topics: []string{"a", "b"}}},
		{"unbounded from latest with checkpoints", "name: x\nsource:\n  topics: [a]\n  format: sensor\n  start: latest\n  bounded: false\n  checkpoint_records: 500\n  checkpoint_interval: 2s\n  idle_timeout: 5s\n  batch_records: 64\n",
			kafkaio.Params{Brokers: []string{"k:9092"}, Topics: []string{"a"}, Start: kafkaio.Start{Kind: kafkaio.StartLatest},
				Unbounded: true, CheckpointRecords: 500, CheckpointInterval: 2 * time.Second, IdleTimeout: 5 * time.Second, BatchRecords: 64}},
		{"small fetches", "name: x\nsource:\n  topics: [a]\n  format: sensor\n  fetch_max_bytes: 1048576\n  fetch_conns: 1\n",
			kafkaio.Params{Brokers: []string{"k:9092"}, Topics: []string{"a"}, FetchMaxBytes: 1 << 20, FetchConns: 1}},
		{"explicit offsets", "name: x\nsource:\n  topics: [a]\n  format: sensor\n  start: offsets\n  offsets: {0: 10, 3: 7}\n",
			kafkaio.Params{Brokers: []string{"k:9092"}, Topics: []string{"a"}, Start: kafkaio.Start{Kind: kafkaio.StartOffsets, Offsets: map[int]int64{0: 10, 3: 7}}}},
		{"timestamp", "name: x\nsource:\n  topics: [a]\n  format: image\n  start: timestamp\n  time: 2024-03-01T12:00:00Z\n",
			kafkaio.Params{Brokers: []string{"k:9092"}, Topics: []string{"a"}, Start: kafkaio.Start{Kind: kafkaio.StartTime, Time: at}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := configs.Parse("x.yaml", []byte(tt.spec))
			if err != nil {
				t.Fatal(err)
			}
			if got := SourceParams(spec, []string{"k:9092"}); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SourceParams =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestDecodeParamsAndOutputs(t *testing.T) {
	spec, err := configs.Parse("x.yaml", []byte("name: plant\nsource:\n  topics: [a]\n  format: image\ndecode:\n  max_bytes: 100\n  max_width: 64\n  max_height: 32\n  max_pixels: 1000\n  dead_letter_suffix: .bad\noutput:\n  dir: /tmp/o\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := DecodeParams(spec)
	if d.MaxBytes != 100 || d.Image.MaxWidth != 64 || d.Image.MaxHeight != 32 || d.Image.MaxPixels != 1000 || d.DeadLetterSuffix != ".bad" {
		t.Errorf("DecodeParams = %+v", d)
	}
	if CountsFile(spec) != "/tmp/o/device-counts.csv" || CountsTopic(spec) != "plant.counts" {
		t.Errorf("outputs %s, %s", CountsFile(spec), CountsTopic(spec))
	}
}
