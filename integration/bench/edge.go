package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
)

// benchEdgeBinary measures what an edge device takes: the size of the
// binary make build produced and the resident memory of `muon version`
// (the floor of every muon process), of a copy installed as a device
// would get it and of the linker's own output file.
func benchEdgeBinary(muon string) {
	st, err := os.Stat(muon)
	must(err)
	bench("edge.binary_mb", float64(st.Size())/1e6, "MB")
	// Most of the figure is the binary's own pages, and how many the
	// kernel maps around each one touched depends on how the file's pages
	// came into the page cache: the linker writes its output through a
	// shared mapping, and on this machine's kernel (6.18, ext4) that file
	// has cost up to 3 MiB more in every process than a copy of it, even
	// after the page cache was dropped (other times, nothing). A device
	// gets a copy (install, scp, a package), so the figure is a copy's.
	dir, err := os.MkdirTemp("", "muon-bench-installed-")
	must(err)
	defer os.RemoveAll(dir)
	installed := filepath.Join(dir, "muon")
	must(exec.Command("install", "-m", "0755", muon, installed).Run())
	median := func(bin string) (float64, bool) {
		// The median of five: one run's figure moves by a MiB with what
		// else the machine did.
		var runs []float64
		for range 5 {
			rss, ok := maxRSS(bin, "version")
			if !ok {
				return 0, false
			}
			runs = append(runs, rss)
		}
		slices.Sort(runs)
		fmt.Fprintf(os.Stderr, "bench: %s version resident, five runs: %.1f MiB\n", bin, runs)
		return runs[2], true
	}
	if rss, ok := median(installed); ok {
		bench("edge.version_rss_mb", rss, "MiB")
	}
	if rss, ok := median(muon); ok {
		bench("edge.version_rss_mb.linker_output", rss, "MiB")
	}
}

// maxRSS runs a command under /usr/bin/time and returns its peak resident
// memory: a child's ru_maxrss would also count the pages of this (large)
// process until the exec, /usr/bin/time's child starts small.
func maxRSS(name string, args ...string) (float64, bool) {
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		fmt.Fprintln(os.Stderr, "bench: no /usr/bin/time (Debian package time): edge.version_rss_mb skipped")
		return 0, false
	}
	var stderr bytes.Buffer
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "maxrss_kib=%M", name}, args...)...)
	cmd.Stdout, cmd.Stderr = nil, &stderr
	must(cmd.Run())
	out := stderr.String()
	i := strings.LastIndex(out, "maxrss_kib=")
	if i < 0 {
		must(fmt.Errorf("no maxrss in %q", out))
	}
	kib, err := strconv.ParseFloat(strings.TrimSpace(out[i+len("maxrss_kib="):]), 64)
	must(err)
	return kib / 1024, true
}

// benchColdStart measures an edge infer job from the start of its process
// to its first prediction on the topic (so the first record read comes
// before): what a device waits after a reboot. The job reads a topic of
// 100 digits, bounded.
func benchColdStart(muon string, brokers []string, store, pub, datasets string) {
	ctx := context.Background()
	topic := fmt.Sprintf("cold-%d", time.Now().UnixNano()%1e9)
	must(kafkaio.EnsureTopics(ctx, kafkaio.Plain(brokers...), kafkaio.TopicSpec{Name: topic, Partitions: 1},
		kafkaio.TopicSpec{Name: topic + ".dlq", Partitions: 1}, kafkaio.TopicSpec{Name: topic + ".predictions", Partitions: 1},
		kafkaio.TopicSpec{Name: topic + ".predictions.dlq", Partitions: 1}))
	tes := filepath.Join(datasets, "optdigits", "optdigits.tes")
	_, err := replay.Replay(ctx, []string{tes}, replay.Options{Brokers: brokers, Topic: topic,
		Recording: recording.Options{Format: "csv", Device: "optdigits", Start: time.Now(), Period: time.Microsecond}})
	must(err)
	out, err := os.MkdirTemp("", "muon-bench-cold-")
	must(err)
	defer os.RemoveAll(out)
	cmd := exec.Command(muon, "run", "--config", "configs/infer-digits.yaml",
		"--set", "kafka.brokers=["+strings.Join(brokers, ",")+"]", "--set", "source.topics=["+topic+"]", "--set", "replay=[]",
		"--set", "output.dir="+out,
		"--set", fmt.Sprintf("inference=[{name: digits, store: %s, trust: [%s], topic: %s.predictions}]", store, pub, topic))
	began := time.Now()
	must(cmd.Start())
	var first time.Duration
	for first == 0 {
		ends, err := kafkaio.EndOffsets(ctx, kafkaio.Plain(brokers...), topic+".predictions")
		must(err)
		if ends[0] > 0 {
			first = time.Since(began)
			break
		}
		if time.Since(began) > time.Minute {
			must(fmt.Errorf("cold start: no prediction within a minute"))
		}
		time.Sleep(2 * time.Millisecond)
	}
	must(cmd.Wait())
	fmt.Fprintf(os.Stderr, "bench: cold start: first prediction %v after the process started\n", first.Round(time.Millisecond))
	bench("edge.cold_start_ms", float64(first.Milliseconds()), "ms")
}
