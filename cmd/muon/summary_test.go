package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/jobs"
)

// Strings from messages (labels, dead-letter reasons, model names) reach
// the terminal escaped and cut: an escape sequence cannot retitle the
// terminal, and a 900 KB label is not printed whole.
func TestSummaryPrintsMessageStringsSafely(t *testing.T) {
	spec, err := configs.Parse("x.yaml", []byte("name: x\nsource: {topics: [a], format: sensor}\n"))
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("x", 900_000)
	sum := &jobs.Summary{Job: "x", DeviceLabels: map[string]int64{"\x1b]0;owned\x07": 1, huge: 2},
		DLQReasons: []jobs.Reason{{Reason: "decode: bad \x1b[2J label", Count: 3}}, DeadLetters: 3}
	var w bytes.Buffer
	printSummary(&w, spec, sum)
	out := w.String()
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("the summary printed control characters:\n%q", out)
	}
	if len(out) > 5000 || !strings.Contains(out, "…(900000 bytes)") {
		t.Errorf("the summary printed %d bytes for a 900 KB label", len(out))
	}
	if !strings.Contains(out, `\x1b]0;owned\a`) {
		t.Errorf("the escaped label is missing:\n%s", out)
	}

	var inf bytes.Buffer
	printInference(&inf, []jobs.BranchSummary{{Name: "b", Model: "evil\x1b[31m@7", ModelLoads: 2, ByModel: map[string]int64{"evil\x1b[31m@7": 1}}})
	if strings.Contains(inf.String(), "\x1b") {
		t.Errorf("a model name printed raw:\n%q", inf.String())
	}
}

// An archive of many small files gets a warning that names the setting
// to change; an archive of large files gets none.
func TestSummaryWarnsOfSmallArchiveFiles(t *testing.T) {
	for _, tt := range []struct {
		n    jobs.Files
		want string
	}{
		{jobs.Files{Files: 400, Rows: 4000, Partitions: 100, Partition: "hour"}, "warning        the readings archive got 400 files for 4000 rows (10.0 a file) over 100 hour partitions: its event times are sparse, or spread by their producers; set archive.partition: day"},
		{jobs.Files{Files: 400, Rows: 4000, Partitions: 100, Partition: "day"}, "over 100 day partitions: its event times are sparse, or spread by their producers; check the producers' timestamps"},
		{jobs.Files{Files: 5, Rows: 4000, Partitions: 5, Partition: "day"}, ""},
		{jobs.Files{Files: 99, Rows: 99, Partitions: 99, Partition: "hour"}, ""},
	} {
		var w bytes.Buffer
		printFeatures(&w, &jobs.FeatureSummary{Kind: "readings", Archive: map[string]jobs.Files{"readings": tt.n}})
		got := w.String()
		if tt.want == "" && strings.Contains(got, "warning") || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%+v: printed\n%s\nwant %q", tt.n, got, tt.want)
		}
	}
}

// Rows whose channels were too short for their bands, and MiniRocket
// series cut to the length, are warned of with the setting to change.
func TestSummaryWarnsOfShortBandsAndCutSeries(t *testing.T) {
	spec, err := configs.Parse("x.yaml", []byte("name: x\nsource: {topics: [a], format: sensor}\nfeatures: {kind: windows, channels: [x], bands: 8, window: {size: 1s}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	printSummary(&w, spec, &jobs.Summary{Job: "x", ShortBands: 12})
	if !strings.Contains(w.String(), "12 row(s) had a channel of fewer than 16 values") || !strings.Contains(w.String(), "lower features.bands") {
		t.Errorf("no short-band warning:\n%s", w.String())
	}
	w.Reset()
	printSummary(&w, spec, &jobs.Summary{Job: "x"})
	if strings.Contains(w.String(), "warning") {
		t.Errorf("a warning without short bands:\n%s", w.String())
	}
	spec.Features.Rocket.Length = 100
	printSummary(&w, spec, &jobs.Summary{Job: "x", CutSeries: 3})
	if !strings.Contains(w.String(), "3 series longer than features.rocket.length (100)") {
		t.Errorf("no cut-series warning:\n%s", w.String())
	}
}
