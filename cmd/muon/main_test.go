package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/kafkaio/embedded"
	"github.com/muonml/muon/message"
)

func runMuon(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// Every flag of every command appears in its help, with a description.
func TestHelpDescribesEveryFlag(t *testing.T) {
	code, out, _ := runMuon(t, "help")
	if code != 0 {
		t.Fatalf("muon help exited %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out, c.name) || !strings.Contains(out, c.short) {
			t.Errorf("muon help does not list %s", c.name)
		}
		t.Run(c.name, func(t *testing.T) {
			code, help, _ := runMuon(t, "help", c.name)
			if code != 0 {
				t.Fatalf("muon help %s exited %d", c.name, code)
			}
			_, viaFlag, _ := runMuon(t, c.name, "--help")
			_ = viaFlag
			fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
			c.flags(fs, &streams{stdout: io.Discard, stderr: io.Discard})
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(help, "-"+f.Name) {
					t.Errorf("help for %s lacks -%s", c.name, f.Name)
				}
				if strings.TrimSpace(f.Usage) == "" {
					t.Errorf("flag -%s of %s has no description", f.Name, c.name)
				}
			})
			if !strings.Contains(help, "Usage: muon "+c.name) {
				t.Errorf("help for %s lacks a usage line:\n%s", c.name, help)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Commands:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, 2, `no command "frobnicate"`},
		{[]string{"run"}, 2, "--config is required"},
		{[]string{"run", "--config", "x.yaml", "--runner", "spark"}, 1, "x.yaml"},
		{[]string{"produce", "--topic", "t", "a.ts"}, 2, "--brokers is required"},
		{[]string{"produce", "--brokers", "127.0.0.1:1"}, 2, "--topic is required"},
		{[]string{"produce", "--brokers", "127.0.0.1:1", "--topic", "t"}, 2, "at least one recording"},
		{[]string{"produce", "--brokers", "127.0.0.1:1", "--topic", "t", "--acks", "some", "a.ts"}, 2, "--acks"},
		{[]string{"produce", "--brokers", "127.0.0.1:1", "--topic", "t", "--start", "monday", "a.ts"}, 2, "--start"},
		{[]string{"broker", "--partitions", "0"}, 2, "--partitions"},
		{[]string{"broker", "--listen", "nonsense"}, 1, "listen address"},
		{[]string{"version", "extra"}, 2, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := runMuon(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errs)
			}
			if !strings.Contains(out+errs, tt.want) {
				t.Errorf("output lacks %q:\nstdout %s\nstderr %s", tt.want, out, errs)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runMuon(t, "version")
	if code != 0 || !strings.Contains(out, "muon ") || !strings.Contains(out, "beam go sdk") {
		t.Errorf("version: exit %d, output %q", code, out)
	}
}

func TestRunRefusesBadSpecBeforeStarting(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(spec, []byte("name: x\nsource:\n  topics: [a]\n  format: sensor\n  partitons: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runMuon(t, "run", "--config", spec)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(errs, spec+":5: source.partitons: unknown field") {
		t.Errorf("error does not name file, line and field: %q", errs)
	}
	if strings.Contains(out+errs, "embedded Kafka broker") {
		t.Error("the job started a broker before validating its spec")
	}
}

// Every job of a run is checked before the first starts: a second spec's
// unusable store, missing trust file or bad topic fails the run before the
// first job starts a broker or replays (issue 15 item 12).
func TestRunChecksEveryJobBeforeStarting(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first.yaml")
	if err := os.WriteFile(first, []byte("name: first\nsource: {topics: [a], format: sensor}\nreplay: [{path: "+filepath.Join(dir, "none.ts")+"}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runMuon(t, "models", "keygen", "--dir", filepath.Join(dir, "keys"), "--name", "k"); code != 0 {
		t.Fatal(errs)
	}
	train := "name: second\nsource: {topics: [a], format: sensor}\njob: train\nfeatures: {kind: cases, channels: [x]}\nmodel: {kind: softmax, labels: [a, b]}\n"
	for _, tt := range []struct{ name, spec, want string }{
		{"store under a file", train + "snapshot: {key: " + filepath.Join(dir, "keys", "k.key") + ", store: " + filepath.Join(notADir, "store") + "}\n", "snapshot.store"},
		{"missing trust file", "name: second\nsource: {topics: [a], format: sensor}\njob: infer\nfeatures: {kind: readings, channels: [x]}\n" +
			"inference: [{name: b, store: " + filepath.Join(dir, "store") + ", trust: [" + filepath.Join(dir, "missing.pub") + "], topic: p}]\n", "missing.pub"},
		{"topic as a path", "name: second\nsource: {topics: [../../etc/passwd], format: sensor}\n", "source.topics[0]"},
		{"softmax with hidden layers", strings.Replace(train, "kind: softmax,", "kind: softmax, hidden: [16],", 1), "hidden must be empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			second := filepath.Join(dir, "second.yaml")
			if err := os.WriteFile(second, []byte(tt.spec), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errs := runMuon(t, "run", "--config", first, "--config", second)
			if code == 0 || !strings.Contains(errs, second) || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, error %q: want it to name %s and %s", code, errs, second, tt.want)
			}
			if strings.Contains(out+errs, "embedded Kafka broker") || strings.Contains(out+errs, "job 1 of 2") {
				t.Errorf("the first job started before the second was checked:\n%s%s", out, errs)
			}
		})
	}
}

const tsFile = `# a tiny UEA file
@problemName Tiny
@timeStamps false
@univariate false
@dimensions 2
@equalLength true
@seriesLength 3
@classLabel true up down
@data
1,2,3:4,5,6:up
3,2,1:6,5,4:down
`

// The ingest job end to end: embedded broker, replay, bounded read, decode,
// per-device counts and a summary.
func TestRunIngestJob(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "tiny.ts")
	if err := os.WriteFile(ts, []byte(tsFile), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "job.yaml")
	body := fmt.Sprintf("name: tiny\nsource:\n  topics: [tiny]\n  format: sensor\noutput:\n  dir: %s\nreplay:\n  - path: %s\nedge:\n  memory_limit: 1.5GiB\n", filepath.Join(dir, "out"), ts)
	if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	code, out, errs := runMuon(t, "run", "--config", spec)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// The spec's budget is this process's soft memory limit.
	if lim := debug.SetMemoryLimit(-1); lim != 3<<29 || !strings.Contains(errs, "muon: Go memory limit 1536 MiB (spec)") {
		t.Errorf("memory limit %d after a job with edge.memory_limit 1.5GiB; stderr:\n%s", lim, errs)
	}
	for _, want := range []string{"job tiny: done on the edge runner", "read           6 records", "decoded        6 readings", "dead letters   0", "devices        2", "devices/label  down 1, up 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	counts, err := os.ReadFile(filepath.Join(dir, "out", "device-counts.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := "device,records,first,last,label\ntiny-0001,3,2024-01-01T00:00:00Z,2024-01-01T00:00:00.2Z,up\ntiny-0002,3,2024-01-01T00:00:00Z,2024-01-01T00:00:00.2Z,down\n"
	if string(counts) != want {
		t.Errorf("device counts:\n%s\nwant:\n%s", counts, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "summary.json")); err != nil {
		t.Error(err)
	}
}

// muon produce on each recording format, against the embedded broker.
func TestProduceFormats(t *testing.T) {
	b, err := embedded.Start(embedded.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	ts := filepath.Join(dir, "tiny.ts")
	csvPath := filepath.Join(dir, "plant.csv")
	imgs := filepath.Join(dir, "cams")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(ts, []byte(tsFile), 0o644))
	engines := filepath.Join(dir, "test_FD001.txt")
	rul := filepath.Join(dir, "RUL_FD001.txt")
	row := " 0.1 0.2 100.0" + strings.Repeat(" 518.67", 21) + "  \n"
	must(os.WriteFile(engines, []byte("1 1"+row+"1 2"+row+"2 1"+row), 0o644))
	must(os.WriteFile(rul, []byte("112\n98\n"), 0o644))
	must(os.WriteFile(csvPath, []byte("timestamp,device,temp,label\n2024-01-01 00:00:00,m1,20.5,ok\n2024-01-01 00:05:00,m2,21,ok\n2024-01-01 00:10:00,m1,,ok\n2024-01-01 00:15:00,m1,99.5,hot\n"), 0o644))
	must(os.MkdirAll(filepath.Join(imgs, "good"), 0o755))
	must(os.MkdirAll(filepath.Join(imgs, "bad"), 0o755))
	img := image.NewGray(image.Rect(0, 0, 4, 3))
	img.Set(1, 1, color.Gray{Y: 200})
	var buf bytes.Buffer
	must(png.Encode(&buf, img))
	must(os.WriteFile(filepath.Join(imgs, "good", "a.png"), buf.Bytes(), 0o644))
	var pgm bytes.Buffer
	must(message.EncodePGM(&pgm, img))
	must(os.WriteFile(filepath.Join(imgs, "bad", "b.pgm"), pgm.Bytes(), 0o644))
	must(os.WriteFile(filepath.Join(imgs, "bad", "mask.png"), buf.Bytes(), 0o644))

	tests := []struct {
		name  string
		args  []string
		count int64
	}{
		{"ts", []string{ts}, 6},
		{"csv", []string{csvPath}, 3}, // the row without a value is skipped
		{"images", []string{"--exclude", "mask*", imgs}, 2},
		{"rate", []string{"--rate", "200", ts}, 6},
		{"cmapss", []string{"--format", "cmapss", "--rul", rul, engines}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := "produce-" + tt.name
			args := append([]string{"produce", "--brokers", b.Addr(), "--topic", topic, "--quiet"}, tt.args...)
			code, out, errs := runMuon(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if !strings.Contains(out, fmt.Sprintf("produced %d records", tt.count)) {
				t.Errorf("summary %q, want %d records", out, tt.count)
			}
			ends, err := kafkaio.EndOffsets(context.Background(), kafkaio.Plain(b.Addr()), topic)
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, e := range ends {
				n += e
			}
			if n != tt.count {
				t.Errorf("topic holds %d records, want %d", n, tt.count)
			}
		})
	}

	code, _, errs := runMuon(t, "produce", "--brokers", b.Addr(), "--topic", "x", filepath.Join(dir, "notes.txt"))
	if code != 1 || !strings.Contains(errs, "notes.txt") {
		t.Errorf("unsupported file: exit %d, stderr %q", code, errs)
	}
}

func TestBeyondLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9092": false, "[::1]:9092": false, "localhost:9092": false, "127.0.0.2:1": false,
		"0.0.0.0:9092": true, "[::]:9092": true, "192.168.1.4:9092": true, "kafka.example:9092": true, "nonsense": true,
	} {
		if got := beyondLoopback(addr); got != want {
			t.Errorf("beyondLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
