package replay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
)

func TestReplay(t *testing.T) {
	b, err := embedded.Start(embedded.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "line.csv")
	if err := os.WriteFile(csvPath, []byte("device,temp\nm1,20\nm2,21\nm1,22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	brokers := []string{b.Addr()}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

	tests := []struct {
		name    string
		paths   []string
		o       replay.Options
		records int64
		wantErr string
	}{
		{"csv without a clock takes DefaultStart", []string{csvPath},
			replay.Options{Brokers: brokers, Topic: "a", Recording: recording.Options{Period: time.Second}, DefaultStart: start}, 3, ""},
		{"twice, rate limited", []string{csvPath, csvPath},
			replay.Options{Brokers: brokers, Topic: "b", Rate: 1000, Recording: recording.Options{Start: start, Period: time.Second}}, 6, ""},
		{"no clock at all", []string{csvPath}, replay.Options{Brokers: brokers, Topic: "c"}, 0, "Options.Start"},
		{"no files", nil, replay.Options{Brokers: brokers, Topic: "c"}, 0, "no files"},
		{"no topic", []string{csvPath}, replay.Options{Brokers: brokers}, 0, "no topics"},
		{"negative rate", []string{csvPath}, replay.Options{Brokers: brokers, Topic: "c", Rate: -1}, 0, "rate"},
		{"missing file", []string{filepath.Join(dir, "nope.csv")}, replay.Options{Brokers: brokers, Topic: "c", DefaultStart: start}, 0, "nope.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum, err := replay.Replay(context.Background(), tt.paths, tt.o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.Records != tt.records || sum.Files != len(tt.paths) || sum.Bytes == 0 {
				t.Errorf("summary %+v, want %d records from %d files", sum, tt.records, len(tt.paths))
			}
			ends, err := kafkaio.EndOffsets(context.Background(), kafkaio.Plain(brokers...), tt.o.Topic)
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, e := range ends {
				n += e
			}
			if n != tt.records {
				t.Errorf("topic holds %d records, want %d", n, tt.records)
			}
		})
	}
}

func TestReplayStopsWhenCancelled(t *testing.T) {
	b, err := embedded.Start(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	path := filepath.Join(t.TempDir(), "slow.csv")
	if err := os.WriteFile(path, []byte("device,temp\nm1,1\nm1,2\nm1,3\nm1,4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = replay.Replay(ctx, []string{path}, replay.Options{Brokers: []string{b.Addr()}, Topic: "slow", Rate: 0.5,
		Recording: recording.Options{Start: time.Unix(0, 0), Period: time.Second}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled replay returned %v, want context.Canceled", err)
	}
}

// What a recording leaves out is counted and said: missing cells and rows
// without any value (issue 15 item 14).
func TestReplayCountsWhatItLeavesOut(t *testing.T) {
	b, err := embedded.Start(embedded.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	path := filepath.Join(t.TempDir(), "gaps.csv")
	if err := os.WriteFile(path, []byte("device,temp,hum\nm1,20,NaN\nm2,NA,\nm1,22,40\nm2,?,nan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := replay.Replay(context.Background(), []string{path}, replay.Options{Brokers: []string{b.Addr()}, Topic: "gaps",
		Recording: recording.Options{Start: time.Unix(0, 0), Period: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != 2 || sum.Missing != 5 || sum.Empty != 2 {
		t.Errorf("summary %+v, want 2 records, 5 missing values, 2 empty rows", sum)
	}
	if s := sum.String(); !strings.Contains(s, "5 missing values") || !strings.Contains(s, "2 rows without any value skipped") {
		t.Errorf("summary line %q does not say what was left out", s)
	}
}

// A folder of images counts each image as a file, not the folder as one.
func TestReplayCountsImagesAsFiles(t *testing.T) {
	b, err := embedded.Start(embedded.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	for i, label := range []string{"ok", "ok", "defect"} {
		sub := filepath.Join(dir, label)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("%d.png", i)), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := replay.Replay(context.Background(), []string{dir}, replay.Options{Brokers: []string{b.Addr()}, Topic: "images",
		Recording: recording.Options{Start: time.Unix(0, 0), Period: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != 3 || sum.Files != 3 || !strings.Contains(sum.String(), "from 3 file(s)") {
		t.Errorf("summary %+v (%s), want 3 records from 3 files", sum, sum)
	}
}
