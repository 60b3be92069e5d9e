package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/producer/recording"
	"github.com/muonml/muon/producer/replay"
)

// produceHelp is the help of muon produce.
const produceHelp = `Replays recordings into a Kafka topic as devices and gateways would, in the
message format muon reads (README: "Message format"):

  *.ts        UEA/UCR time series: each case becomes a device (<file>-0001, ...),
              each time step one sensor reading with one value per channel
              (dim0, dim1, ...) and the case's class label.
  *.csv       a header line, then one reading per row: a time column
              (timestamp/time/ts/datetime/date, or --time-column), an optional
              device column (device/device_id/id/unit/sensor, or
              --device-column; default: the file name), an optional label
              column (label/class/target), and numeric value columns.
  DIRECTORY   images (.png, .jpg, .jpeg, .pgm), walked in name order; the
              top-level sub-folder name is the label. The message value is the
              file; headers carry device, label and content-type.
  *.jsonl     captured messages, one message value per line, sent as they are.
  --format cmapss
              a NASA C-MAPSS turbofan file (train_FD001.txt): each unit (engine)
              becomes a device (<file>/1, ...), each row a reading at --start
              + (cycle-1) × --period with values op1-op3 and s1-s21, labelled
              with the remaining useful life in cycles: to the unit's last row,
              plus its line of the --rul file (RUL_FD001.txt for
              test_FD001.txt). All units start together, interleaved by cycle.

Records are keyed by device and timestamped with their event time. Recordings
without timestamps start at --start (default: now) and advance by --period;
recordings with timestamps keep them unless --start is given, which shifts
them so the first one equals it. Writes wait for all in-sync replicas unless
--acks says otherwise. Progress goes to stderr; a summary (records, bytes,
records/s) ends the run.`

func produceCmd() *command {
	return &command{
		name:  "produce",
		usage: "produce --brokers host:port --topic T [--rate N] [--start TIME] [--period DURATION] [flags] PATH...",
		short: "replay recordings (.ts, .csv, C-MAPSS, image folders) into a Kafka topic",
		long:  produceHelp,
		flags: func(fs *flag.FlagSet, out *streams) func([]string) error {
			var brokers brokerList
			fs.Var(&brokers, "brokers", "Kafka bootstrap `host:port`[,host:port...] (required)")
			topic := fs.String("topic", "", "`topic` to produce to (required)")
			rate := fs.Float64("rate", 0, "records per second over the whole run; 0 = unlimited")
			start := fs.String("start", "", "event `time` of the first sample, RFC 3339 or 'now' (default: now for recordings without timestamps; recorded times kept otherwise)")
			period := fs.Duration("period", 100*time.Millisecond, "time between samples of recordings without timestamps")
			device := fs.String("device", "", "device `name` (replaces the file-derived name; a prefix for CSV device columns)")
			timeCol := fs.String("time-column", "", "CSV time `column` (default: auto-detect)")
			deviceCol := fs.String("device-column", "", "CSV device `column` (default: auto-detect)")
			labelCol := fs.String("label-column", "", "CSV label `column` (default: auto-detect)")
			var exclude stringList
			fs.Var(&exclude, "exclude", "skip image files whose name matches this `glob` (repeatable), e.g. '*.png'")
			format := fs.String("format", "", "read files as `ts, csv, jsonl or cmapss` whatever their extension (default: from the extension; cmapss only when given), e.g. csv for optdigits.tra")
			rul := fs.String("rul", "", "remaining-useful-life `file` of a --format cmapss test file, line i for unit i, e.g. RUL_FD001.txt (default: units run to failure)")
			encoding := fs.String("encoding", "json", "how sensor readings are encoded: `json` (the contract) or binary (smaller, about 3× faster for muon to decode; see the README's Message format)")
			acks := fs.String("acks", "all", "acknowledgements to wait for: all, leader or none")
			quiet := fs.Bool("quiet", false, "no progress lines, only the summary")
			security := kafkaSecurityFlags(fs)
			return func(paths []string) error {
				if len(brokers) == 0 {
					return fmt.Errorf("%w: --brokers is required (e.g. --brokers 127.0.0.1:9092; 'muon broker' serves one)", errUsage)
				}
				if *topic == "" {
					return fmt.Errorf("%w: --topic is required", errUsage)
				}
				if len(paths) == 0 {
					return fmt.Errorf("%w: name at least one recording (.ts, .csv or an image folder)", errUsage)
				}
				if *rate < 0 {
					return fmt.Errorf("%w: --rate must be ≥ 0", errUsage)
				}
				a, err := parseAcks(*acks)
				if err != nil {
					return err
				}
				if *encoding != "json" && *encoding != "binary" {
					return fmt.Errorf("%w: --encoding %q: want json or binary", errUsage, *encoding)
				}
				sec, err := security()
				if err != nil {
					return err
				}
				o := replay.Options{
					Brokers: brokers, Security: sec, Topic: *topic, Rate: *rate, Acks: a,
					Recording: recording.Options{Period: *period, Device: *device, TimeColumn: *timeCol,
						DeviceColumn: *deviceCol, LabelColumn: *labelCol, Exclude: exclude, Format: *format, RUL: *rul,
						Binary: *encoding == "binary"},
					DefaultStart: time.Now().UTC().Truncate(time.Millisecond),
				}
				if o.Recording.Start, err = parseStart(*start, o.DefaultStart); err != nil {
					return err
				}
				if !*quiet {
					o.Progress = out.stderr
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				sum, err := replay.Replay(ctx, paths, o)
				fmt.Fprintf(out.stdout, "produced %s to %s\n", sum, *topic)
				return err
			}
		},
	}
}

// parseStart reads --start: empty keeps recorded times, "now" is now.
func parseStart(s string, now time.Time) (time.Time, error) {
	switch s {
	case "":
		return time.Time{}, nil
	case "now":
		return now, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: --start %q is not RFC 3339 (e.g. 2024-01-01T00:00:00Z) or 'now'", errUsage, s)
	}
	return t.UTC(), nil
}

func parseAcks(s string) (kafkaio.Acks, error) {
	switch strings.ToLower(s) {
	case "all", "-1":
		return kafkaio.AcksAll, nil
	case "leader", "1":
		return kafkaio.AcksLeader, nil
	case "none", "0":
		return kafkaio.AcksNone, nil
	}
	return 0, fmt.Errorf("%w: --acks %q: want all, leader or none", errUsage, s)
}
