package recording

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
)

const cmapssDir = "cmapss_fd001"

func TestCMAPSSFD001(t *testing.T) {
	dir := filepath.Join(datasets, cmapssDir)
	if _, err := os.Stat(filepath.Join(dir, "train_FD001.txt")); err != nil {
		t.Skipf("C-MAPSS FD001 not found (see shared/datasets/README.md): %v", err)
	}
	const period = time.Minute
	// The first row of train_FD001.txt, and the first and last rows of
	// unit 1 in test_FD001.txt.
	trainFirst := "1 1 -0.0007 -0.0004 100.0 518.67 641.82 1589.70 1400.60 14.62 21.61 554.36 2388.06 9046.19 1.30 47.47 521.66 2388.02 8138.62 8.4195 0.03 392 2388 100.00 39.06 23.4190"
	testLast := "1 31 -0.0006 0.0004 100.0 518.67 642.58 1581.22 1398.91 14.62 21.61 554.42 2388.08 9056.40 1.30 47.23 521.79 2388.06 8130.11 8.4024 0.03 393 2388 100.00 38.81 23.3552"
	tests := []struct {
		name     string
		file     string
		opt      Options
		readings int
		device   string // of unit 1
		// Unit 1's first and last readings: the rows, the labels.
		first, last           string
		firstLabel, lastLabel string
		lastCycle             int
	}{
		{name: "train runs to failure", file: "train_FD001.txt",
			opt:      Options{Format: "cmapss", Start: start, Period: period},
			readings: 20631, device: "train_FD001/1",
			first: trainFirst, firstLabel: "191", lastLabel: "0", lastCycle: 192},
		{name: "test with remaining useful lives", file: "test_FD001.txt",
			opt:      Options{Format: "cmapss", Start: start, Period: period, RUL: filepath.Join(dir, "RUL_FD001.txt")},
			readings: 13096, device: "test_FD001/1",
			last: testLast, firstLabel: "142", lastLabel: "112", lastCycle: 31},
		{name: "device replaces the file stem", file: "train_FD001.txt",
			opt:      Options{Format: "cmapss", Start: start, Period: period, Device: "engine"},
			readings: 20631, device: "engine/1",
			first: trainFirst, firstLabel: "191", lastLabel: "0", lastCycle: 192},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := Open(filepath.Join(dir, tt.file), tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			msgs, err := drain(t, src)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != tt.readings {
				t.Fatalf("%d readings, want %d", len(msgs), tt.readings)
			}
			devices := map[string]bool{}
			var unit1 []records.Reading
			for i, m := range msgs {
				var r records.Reading
				if err := message.ParseReading(m.Value, time.Time{}, &r); err != nil {
					t.Fatal(err)
				}
				devices[r.Device] = true
				if i > 0 && m.Time.Before(msgs[i-1].Time) {
					t.Fatalf("message %d: time goes back from %v to %v", i, msgs[i-1].Time, m.Time)
				}
				if r.Device == tt.device {
					unit1 = append(unit1, r)
				}
			}
			if len(devices) != 100 {
				t.Errorf("%d devices, want 100", len(devices))
			}
			// All engines start at Start, in unit order.
			for u := 1; u <= 100; u++ {
				want := strings.TrimSuffix(tt.device, "1") + strconv.Itoa(u)
				if got := string(msgs[u-1].Key); got != want || !msgs[u-1].Time.Equal(start) {
					t.Fatalf("message %d: %s at %v, want %s at %v", u-1, got, msgs[u-1].Time, want, start)
				}
			}
			if len(unit1) != tt.lastCycle {
				t.Fatalf("unit 1 has %d readings, want %d", len(unit1), tt.lastCycle)
			}
			first, last := unit1[0], unit1[len(unit1)-1]
			if first.Label != tt.firstLabel || last.Label != tt.lastLabel {
				t.Errorf("unit 1 labels %s … %s, want %s … %s", first.Label, last.Label, tt.firstLabel, tt.lastLabel)
			}
			if want := start.Add(time.Duration(tt.lastCycle-1) * period); !last.Time.Equal(want) {
				t.Errorf("unit 1 ends at %v, want %v", last.Time, want)
			}
			for _, c := range []struct {
				r   records.Reading
				row string
			}{{first, tt.first}, {last, tt.last}} {
				if c.row == "" {
					continue
				}
				fields := strings.Fields(c.row)[2:]
				if len(c.r.Values) != len(fields) {
					t.Fatalf("values %v, want %d", c.r.Values, len(fields))
				}
				for i, f := range fields {
					want, _ := strconv.ParseFloat(f, 64)
					if v := c.r.Values[i]; v.Name != cmapssNames[i] || v.Value != want {
						t.Errorf("value %d: %s=%v, want %s=%v", i, v.Name, v.Value, cmapssNames[i], want)
					}
				}
			}
		})
	}
}

// cmapssRowText is a C-MAPSS row whose values are all v, written with
// trailing spaces as NASA's files are.
func cmapssRowText(unit, cycle int, v string) string {
	return fmt.Sprintf("%d %d%s  \n", unit, cycle, strings.Repeat(" "+v, len(cmapssNames)))
}

// cmapssRowWith is cmapssRowText with the named value replaced by cell.
func cmapssRowWith(unit, cycle int, name, cell string) string {
	fields := strings.Fields(cmapssRowText(unit, cycle, "1"))
	for i, n := range cmapssNames {
		if n == name {
			fields[2+i] = cell
		}
	}
	return strings.Join(fields, " ") + "\n"
}

// cmapssSummary is summary's rendering of a reading whose values are all v.
func cmapssSummary(device, at, v, label string) string {
	vals := make([]string, len(cmapssNames))
	for i, n := range cmapssNames {
		vals[i] = n + "=" + v
	}
	return fmt.Sprintf("%s %s [%s] %s", device, at, strings.Join(vals, " "), label)
}

func TestCMAPSSFormats(t *testing.T) {
	clock := Options{Format: "cmapss", Start: start, Period: time.Minute}
	withRUL := func(content string) Options {
		o := clock
		o.RUL = writeFile(t, "RUL.txt", content)
		return o
	}
	// Unit 1: cycles 1, 2, 4; unit 2: cycles 1, 2.
	file := cmapssRowText(1, 1, "1.5") + cmapssRowText(1, 2, "2") + cmapssRowText(1, 4, "-0.25") +
		"\n" + cmapssRowText(2, 1, "7") + strings.Replace(cmapssRowText(2, 2, "8"), "\n", "\r\n", 1)
	badRUL := withRUL("10\nten\n")
	tests := []formatCase{
		{name: "run to failure", opt: clock, file: file, want: []string{
			cmapssSummary("rec/1", "+0s", "1.5", "3"),
			cmapssSummary("rec/2", "+0s", "7", "1"),
			cmapssSummary("rec/1", "+1m0s", "2", "2"),
			cmapssSummary("rec/2", "+1m0s", "8", "0"),
			cmapssSummary("rec/1", "+3m0s", "-0.25", "0"),
		}},
		{name: "remaining useful lives", opt: withRUL("10 \n0\n\n"), file: file, want: []string{
			cmapssSummary("rec/1", "+0s", "1.5", "13"),
			cmapssSummary("rec/2", "+0s", "7", "1"),
			cmapssSummary("rec/1", "+1m0s", "2", "12"),
			cmapssSummary("rec/2", "+1m0s", "8", "0"),
			cmapssSummary("rec/1", "+3m0s", "-0.25", "10"),
		}},
		{name: "device", opt: Options{Format: "cmapss", Start: start, Period: time.Minute, Device: "fan"}, file: cmapssRowText(3, 2, "1"),
			want: []string{cmapssSummary("fan/3", "+1m0s", "1", "0")}},
		{name: "too few columns", opt: clock, file: cmapssRowText(1, 1, "1") + "1 2 3\n",
			wantErr: ErrFormat, errText: "rec.txt:2: 3 columns, want 26"},
		{name: "too many columns", opt: clock, file: strings.TrimSuffix(cmapssRowText(1, 1, "1"), "  \n") + " 9\n",
			wantErr: ErrFormat, errText: "rec.txt:1: 27 columns, want 26"},
		{name: "sensor not a number", opt: clock, file: cmapssRowText(1, 1, "1") + cmapssRowWith(1, 2, "s2", "x"),
			wantErr: ErrFormat, errText: `rec.txt:2: column "s2": "x" is not a number`},
		{name: "NaN", opt: clock, file: cmapssRowWith(1, 1, "op1", "NaN"),
			wantErr: ErrFormat, errText: `rec.txt:1: column "op1": "NaN" is not a number`},
		{name: "unit not a number", opt: clock, file: "a" + cmapssRowText(1, 1, "1"),
			wantErr: ErrFormat, errText: `rec.txt:1: column "unit": "a1" is not a unit number`},
		{name: "cycle zero", opt: clock, file: cmapssRowText(1, 0, "1"),
			wantErr: ErrFormat, errText: `rec.txt:1: column "cycle": "0" is not a cycle number`},
		{name: "cycle goes back", opt: clock, file: cmapssRowText(1, 1, "1") + cmapssRowText(1, 3, "1") + cmapssRowText(2, 1, "1") + cmapssRowText(1, 2, "1"),
			wantErr: ErrFormat, errText: "rec.txt:4: unit 1: cycle 2 after cycle 3"},
		{name: "cycle repeats", opt: clock, file: cmapssRowText(1, 1, "1") + cmapssRowText(1, 1, "1"),
			wantErr: ErrFormat, errText: "rec.txt:2: unit 1: cycle 1 after cycle 1"},
		{name: "cycle beyond 9999", opt: clock, file: cmapssRowText(1, 99999999999, "1"),
			wantErr: ErrFormat, errText: "rec.txt:1: unit 1: cycle 99999999999 is beyond the year 9999"},
		{name: "empty file", opt: clock, file: "\n \n",
			wantErr: ErrFormat, errText: "rec.txt: no rows"},
		{name: "unit missing from the RUL file", opt: withRUL("5\n"), file: cmapssRowText(1, 1, "1") + cmapssRowText(2, 1, "1"),
			wantErr: ErrFormat, errText: "rec.txt:2: unit 2 has no remaining useful life in "},
		{name: "RUL file with a bad line", opt: badRUL, file: cmapssRowText(1, 1, "1"),
			wantErr: ErrFormat, errText: badRUL.RUL + `:2: "ten" is not a remaining useful life`},
		{name: "RUL file with a negative life", opt: withRUL("-1\n"), file: cmapssRowText(1, 1, "1"),
			wantErr: ErrFormat, errText: `RUL.txt:1: "-1" is not a remaining useful life`},
		{name: "RUL file with a gap", opt: withRUL("1\n\n2\n"), file: cmapssRowText(1, 1, "1"),
			wantErr: ErrFormat, errText: "RUL.txt:2: empty line"},
		{name: "empty RUL file", opt: withRUL(""), file: cmapssRowText(1, 1, "1"),
			wantErr: ErrFormat, errText: "RUL.txt: no remaining useful lives"},
		{name: "missing RUL file", opt: Options{Format: "cmapss", Start: start, Period: time.Minute, RUL: filepath.Join(t.TempDir(), "nope.txt")}, file: cmapssRowText(1, 1, "1"),
			wantErr: os.ErrNotExist, errText: "nope.txt"},
		{name: "RUL for a csv file", opt: Options{Format: "csv", Start: start, Period: time.Minute, RUL: "RUL_FD001.txt"}, file: "a\n1\n",
			wantErr: ErrOptions, errText: "rec.txt: remaining useful lives (RUL RUL_FD001.txt) need format cmapss, not csv"},
		{name: "RUL without a format", opt: Options{Start: start, Period: time.Minute, RUL: "RUL_FD001.txt"}, file: cmapssRowText(1, 1, "1"),
			wantErr: ErrOptions, errText: "rec.txt: remaining useful lives (RUL RUL_FD001.txt) need format cmapss, which is never taken"},
		{name: "no clock", opt: Options{Format: "cmapss"}, file: cmapssRowText(1, 1, "1"),
			wantErr: ErrOptions, errText: "Options.Start"},
		{name: "txt is not guessed", opt: Options{Start: start, Period: time.Minute}, file: cmapssRowText(1, 1, "1"),
			wantErr: ErrUnsupported, errText: "rec.txt"},
	}
	runFormatCases(t, "rec.txt", tests)

	if _, err := Open(t.TempDir(), clock); !errors.Is(err, ErrUnsupported) {
		t.Errorf("format cmapss on a folder: %v, want ErrUnsupported", err)
	}
}

func FuzzCMAPSS(f *testing.F) {
	f.Add([]byte(cmapssRowText(1, 1, "1.5")+cmapssRowText(1, 2, "2")+cmapssRowText(2, 1, "-3e-2")), []byte(""))
	f.Add([]byte(cmapssRowText(1, 1, "1")+cmapssRowText(2, 5, "1")), []byte("112 \n98\n"))
	f.Add([]byte(cmapssRowText(1, 2, "1")+cmapssRowText(1, 1, "1")), []byte("1\n\n2\n"))
	if data, err := os.ReadFile(filepath.Join(datasets, cmapssDir, "test_FD001.txt")); err == nil {
		lines := bytes.SplitAfterN(data, []byte("\n"), 41)
		f.Add(bytes.Join(lines[:40], nil), []byte("112\n98\n"))
	}
	f.Fuzz(func(t *testing.T, data, rulData []byte) {
		opt := Options{Format: "cmapss", Start: start, Period: time.Second}
		var rul []int64
		if len(rulData) > 0 {
			opt.RUL = "RUL.txt"
			var err error
			if rul, err = readRUL(opt.RUL, bytes.NewReader(rulData)); err != nil {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("error wraps no sentinel: %v", err)
				}
				return
			}
		}
		src, err := readCMAPSS("fuzz.txt", bytes.NewReader(data), opt, rul)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrOptions) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		var last time.Time
		for n := 0; n < 10000; n++ {
			m, err := src.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				// Rows are checked while parsing; Next cannot fail on a
				// file that opened.
				t.Fatalf("Next: %v", err)
			}
			var r records.Reading
			if err := message.ParseReading(m.Value, time.Time{}, &r); err != nil {
				t.Fatalf("message %s does not parse: %v", m.Value, err)
			}
			if r.Device != string(m.Key) || !r.Time.Equal(m.Time) {
				t.Fatalf("key %q time %v, reading %q %v", m.Key, m.Time, r.Device, r.Time)
			}
			if n, err := strconv.ParseInt(r.Label, 10, 64); err != nil || n < 0 {
				t.Fatalf("label %q is not a remaining useful life", r.Label)
			}
			if m.Time.Before(last) {
				t.Fatalf("time goes back from %v to %v", last, m.Time)
			}
			last = m.Time
		}
	})
}

func BenchmarkCMAPSS(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(datasets, cmapssDir, "train_FD001.txt"))
	if err != nil {
		b.Skipf("C-MAPSS FD001 not found (see shared/datasets/README.md): %v", err)
	}
	opt := Options{Format: "cmapss", Start: start, Period: time.Minute}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		src, err := readCMAPSS("train_FD001.txt", bytes.NewReader(data), opt, nil)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := src.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 20631 {
			b.Fatalf("%d messages", n)
		}
	}
}
