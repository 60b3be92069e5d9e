package recording

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
)

func TestTSBasicMotions(t *testing.T) {
	for _, name := range []string{"BasicMotions_TRAIN", "BasicMotions_TEST"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(datasets, "basicmotions", name+".ts")
			if _, err := os.Stat(path); err != nil {
				t.Skipf("BasicMotions not found (see shared/datasets/README.md): %v", err)
			}
			const period = 100 * time.Millisecond
			src, err := Open(path, Options{Start: start, Period: period})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			msgs, err := drain(t, src)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 4000 {
				t.Fatalf("%d messages, want 40 cases × 100 steps = 4000", len(msgs))
			}
			labels := map[string]map[string]bool{} // label → devices
			var r records.Reading
			for i, m := range msgs {
				if err := message.ParseReading(m.Value, time.Time{}, &r); err != nil {
					t.Fatal(err)
				}
				// Interleaved: step i/40 of case i%40.
				wantDevice := fmt.Sprintf("%s-%04d", name, i%40+1)
				if r.Device != wantDevice || !m.Time.Equal(start.Add(time.Duration(i/40)*period)) {
					t.Fatalf("message %d: %s at %v, want %s at step %d", i, r.Device, m.Time, wantDevice, i/40)
				}
				if len(r.Values) != 6 || r.Values[0].Name != "dim0" || r.Values[5].Name != "dim5" {
					t.Fatalf("message %d: values %v", i, r.Values)
				}
				if labels[r.Label] == nil {
					labels[r.Label] = map[string]bool{}
				}
				labels[r.Label][r.Device] = true
			}
			for _, l := range []string{"Standing", "Running", "Walking", "Badminton"} {
				if len(labels[l]) != 10 {
					t.Errorf("label %s on %d devices, want 10", l, len(labels[l]))
				}
			}
			if len(labels) != 4 {
				t.Errorf("labels %v", labels)
			}
			if name == "BasicMotions_TRAIN" {
				// The first line of data starts 0.079106,0.079106,-0.903497.
				if err := message.ParseReading(msgs[0].Value, time.Time{}, &r); err != nil || r.Values[0].Value != 0.079106 {
					t.Errorf("first reading %s", msgs[0].Value)
				}
				if err := message.ParseReading(msgs[80].Value, time.Time{}, &r); err != nil || r.Values[0].Value != -0.903497 {
					t.Errorf("third step of case 1: %s", msgs[80].Value)
				}
			}
		})
	}
}

func TestTSFormats(t *testing.T) {
	clock := Options{Start: start, Period: time.Second}
	tests := []formatCase{
		{name: "univariate, unequal length, no labels", opt: clock, file: `#comment
@problemName X
@timeStamps false
@univariate true
@classLabel false
@data
1,2,3
4.5,-5e-1
`, want: []string{
			"rec-0001 +0s [dim0=1]",
			"rec-0002 +0s [dim0=4.5]",
			"rec-0001 +1s [dim0=2]",
			"rec-0002 +1s [dim0=-0.5]",
			"rec-0001 +2s [dim0=3]",
		}},
		{name: "multivariate with class labels", opt: clock, file: `@problemName M
@timeStamps false
@dimensions 2
@classLabel true up down
@data
1,2:3,4:up
5,6:7,8:down
`, want: []string{
			"rec-0001 +0s [dim0=1 dim1=3] up",
			"rec-0002 +0s [dim0=5 dim1=7] down",
			"rec-0001 +1s [dim0=2 dim1=4] up",
			"rec-0002 +1s [dim0=6 dim1=8] down",
		}},
		{name: "missing values", opt: clock, file: `@missing true
@dimension 2
@classLabel true a
@data
1,?,NaN,4:?,2,nan,5:a
`, want: []string{
			"rec-0001 +0s [dim0=1] a",
			"rec-0001 +1s [dim1=2] a",
			"rec-0001 +3s [dim0=4 dim1=5] a",
		}},
		{name: "dimensions of unequal length", opt: clock, file: `@dimensions 2
@equalLength false
@classLabel false
@data
1,2,3:4
:5,6
`, want: []string{
			"rec-0001 +0s [dim0=1 dim1=4]",
			"rec-0002 +0s [dim1=5]",
			"rec-0001 +1s [dim0=2]",
			"rec-0002 +1s [dim1=6]",
			"rec-0001 +2s [dim0=3]",
		}},
		{name: "regression target", opt: clock, file: `@univariate true
@targetLabel true
@data
1,2:3.25
7:-1e3
`, want: []string{
			"rec-0001 +0s [dim0=1] 3.25",
			"rec-0002 +0s [dim0=7] -1e3",
			"rec-0001 +1s [dim0=2] 3.25",
		}},
		{name: "date-time stamps kept", file: `@timeStamps true
@dimensions 2
@targetLabel true
@data
(2004-08-10 18:00:00,1130.0),(2004-08-10 19:00:00,1217.75):(2004-08-10 18:00:00,1144.24),(2004-08-10 20:00:00,1111.25):3.2
(2004-08-10 18:30:00, 7) , (2004-08-10 19:00:00,?):(2004-08-10 19:00:00,8):1
`, want: []string{
			"rec-0001 2004-08-10T18:00:00Z [dim0=1130 dim1=1144.24] 3.2",
			"rec-0002 2004-08-10T18:30:00Z [dim0=7] 1",
			"rec-0001 2004-08-10T19:00:00Z [dim0=1217.75] 3.2",
			"rec-0002 2004-08-10T19:00:00Z [dim1=8] 1",
			"rec-0001 2004-08-10T20:00:00Z [dim1=1111.25] 3.2",
		}},
		{name: "date-time stamps shifted to Start", opt: Options{Start: start}, file: `@timeStamps true
@univariate true
@classLabel false
@data
(2004-08-10T18:00:01Z,1),(2004-08-10T18:00:00.5Z,2)
(2004-08-10 18:00:00+01:00,3)
`, want: []string{
			"rec-0002 +0s [dim0=3]",
			"rec-0001 +1h0m0.5s [dim0=2]",
			"rec-0001 +1h0m1s [dim0=1]",
		}},
		{name: "step-number stamps", opt: clock, file: `@timestamps true
@univariate true
@classlabel false
@data
(0,1),(2,3),(5,4)
(1,9)
`, want: []string{
			"rec-0001 +0s [dim0=1]",
			"rec-0002 +1s [dim0=9]",
			"rec-0001 +2s [dim0=3]",
			"rec-0001 +5s [dim0=4]",
		}},
		{name: "CRLF, BOM, case-insensitive tags, device override", opt: Options{Start: start, Period: time.Second, Device: "pump"},
			file: "\uFEFF# c\r\n@PROBLEMNAME P\r\n@TimeStamps FALSE\r\n@UNIVARIATE True\r\n@ClassLabel TRUE 0 1\r\n@DATA\r\n\r\n 1 , 2 :1\r\n# mid-data comment\r\n3:0", want: []string{
				"pump-0001 +0s [dim0=1] 1",
				"pump-0002 +0s [dim0=3] 0",
				"pump-0001 +1s [dim0=2] 1",
			}},
		{name: "class labels without a declared list", opt: clock, file: "@classLabel true\n@data\n1:x\n", want: []string{"rec-0001 +0s [dim0=1] x"}},
		{name: "no @data", opt: clock, file: "@problemName X\n", wantErr: ErrFormat, errText: "no @data line"},
		{name: "no cases", opt: clock, file: "@data\n", wantErr: ErrFormat, errText: "no cases"},
		{name: "data before @data", opt: clock, file: "@classLabel false\n1,2\n@data\n", wantErr: ErrFormat, errText: "rec.ts:2: data before the @data line"},
		{name: "header after @data", opt: clock, file: "@data\n1\n@classLabel false\n", wantErr: ErrFormat, errText: "rec.ts:3: header line"},
		{name: "bad value", opt: clock, file: "@classLabel false\n@data\n1,2\n3,abc\n", wantErr: ErrFormat, errText: `rec.ts:4: case 2, dim0, value 2: "abc" is not a number`},
		{name: "infinite value", opt: clock, file: "@classLabel false\n@data\n1,inf\n", wantErr: ErrFormat, errText: `"inf" is not a number`},
		{name: "empty value", opt: clock, file: "@classLabel false\n@data\n1,,2\n", wantErr: ErrFormat, errText: "value 2"},
		{name: "wrong dimension count", opt: clock, file: "@dimensions 2\n@classLabel false\n@data\n1:2\n1\n", wantErr: ErrFormat, errText: "rec.ts:5: case 2 has 1 dimensions, want 2"},
		{name: "dimension count from the first case", opt: clock, file: "@classLabel false\n@data\n1:2\n1\n", wantErr: ErrFormat, errText: "want 2"},
		{name: "univariate with two dimensions", opt: clock, file: "@univariate true\n@dimensions 2\n@data\n", wantErr: ErrFormat, errText: "@univariate true with @dimensions 2"},
		{name: "unknown class", opt: clock, file: "@classLabel true a b\n@data\n1:c\n", wantErr: ErrFormat, errText: `class label "c" is not one of those declared by @classLabel (a b)`},
		{name: "missing label", opt: clock, file: "@classLabel true a b\n@data\n1,2\n", wantErr: ErrFormat, errText: "want the dimensions, then ':' and the label"},
		{name: "label not UTF-8", opt: clock, file: "@classLabel true\n@data\n1:\xb5\n", wantErr: ErrFormat, errText: "rec.ts:3: label"},
		{name: "empty label", opt: clock, file: "@classLabel true\n@data\n1:\n", wantErr: ErrFormat, errText: "empty label"},
		{name: "bad target", opt: clock, file: "@targetLabel true\n@data\n1:big\n", wantErr: ErrFormat, errText: `regression target "big"`},
		{name: "both labels", opt: clock, file: "@classLabel true a\n@targetLabel true\n@data\n", wantErr: ErrFormat, errText: "both"},
		{name: "bad boolean", opt: clock, file: "@timeStamps yes\n@data\n", wantErr: ErrFormat, errText: `@timeStamps "yes": want true or false`},
		{name: "bad dimensions", opt: clock, file: "@dimensions two\n@data\n", wantErr: ErrFormat, errText: "want a number"},
		{name: "zero dimensions", opt: clock, file: "@dimensions 0\n@data\n", wantErr: ErrFormat, errText: "at least one"},
		{name: "unbalanced parentheses", file: "@timeStamps true\n@data\n(1,2\n", wantErr: ErrFormat, errText: "unbalanced"},
		{name: "tuple without comma", opt: clock, file: "@timeStamps true\n@data\n(1)\n", wantErr: ErrFormat, errText: "want (timestamp,value)"},
		{name: "tuple separator", opt: clock, file: "@timeStamps true\n@data\n(1,2);(2,3)\n", wantErr: ErrFormat, errText: "want ','"},
		{name: "bad timestamp", file: "@timeStamps true\n@data\n(yesterday,2)\n", wantErr: ErrFormat, errText: `"yesterday" is not a date-time`},
		{name: "mixed timestamps", opt: clock, file: "@timeStamps true\n@data\n(1,2),(2004-08-10,3)\n", wantErr: ErrFormat, errText: "mixes"},
		{name: "no Start", opt: Options{Period: time.Second}, file: "@data\n1\n", wantErr: ErrOptions, errText: "rec.ts:1: the file has no timestamps (@timeStamps false), so Options.Start must be set"},
		{name: "no Period", opt: Options{Start: start}, file: "@data\n1\n", wantErr: ErrOptions, errText: "Options.Period must be set"},
		{name: "step numbers need Start", opt: Options{Period: time.Second}, file: "@timeStamps true\n@data\n(1,2)\n", wantErr: ErrOptions, errText: "step numbers"},
		{name: "step beyond 9999", opt: clock, file: "@timeStamps true\n@data\n(9223372036854775807,2)\n", wantErr: ErrFormat, errText: "beyond the year 9999"},
	}
	runFormatCases(t, "rec.ts", tests)
}

func FuzzTS(f *testing.F) {
	f.Add([]byte("@problemName X\n@timeStamps false\n@univariate true\n@classLabel true a b\n@data\n1,2,?,4:a\n5,NaN:b\n"))
	f.Add([]byte("@timeStamps true\n@dimensions 2\n@targetLabel true\n@data\n(2004-08-10 18:00:00,1130.0),(2004-08-10 19:00:00,1217.75):(2004-08-10 18:00:00,1144.24):3.2\n"))
	f.Add([]byte("@timestamps true\n@univariate true\n@classlabel false\n@data\n(0,1),(2,3),(5,4)\n(1,9)\n"))
	f.Add([]byte("\uFEFF@dimension 2\r\n@data\r\n1,2:3,4\r\n"))
	if data, err := os.ReadFile(filepath.Join(datasets, "basicmotions", "BasicMotions_TRAIN.ts")); err == nil {
		// The header and the first case.
		lines := bytes.SplitAfterN(data, []byte("\n"), 15)
		f.Add(bytes.Join(lines[:14], nil))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := readTS("fuzz.ts", bytes.NewReader(data), Options{Start: start, Period: time.Second})
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
				// Values and times are checked while parsing; Next
				// cannot fail on a file that opened.
				t.Fatalf("Next: %v", err)
			}
			var r records.Reading
			if err := message.ParseReading(m.Value, time.Time{}, &r); err != nil {
				t.Fatalf("message %s does not parse: %v", m.Value, err)
			}
			if m.Time.Before(last) {
				t.Fatalf("time goes back from %v to %v", last, m.Time)
			}
			last = m.Time
		}
	})
}

func BenchmarkTS(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(datasets, "basicmotions", "BasicMotions_TRAIN.ts"))
	if err != nil {
		b.Skipf("BasicMotions not found (see shared/datasets/README.md): %v", err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		src, err := readTS("BasicMotions_TRAIN.ts", bytes.NewReader(data), Options{Start: start, Period: 100 * time.Millisecond})
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
		if n != 4000 {
			b.Fatalf("%d messages", n)
		}
	}
}
