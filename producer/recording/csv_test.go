package recording

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
)

const nabCSV = "nab_machine_temperature/machine_temperature_system_failure.csv"

func TestCSVNAB(t *testing.T) {
	path := filepath.Join(datasets, nabCSV)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("NAB machine temperature not found (see shared/datasets/README.md): %v", err)
	}
	tests := []struct {
		name        string
		opt         Options
		first, last time.Time
	}{
		{"recorded times", Options{},
			time.Date(2013, 12, 2, 21, 15, 0, 0, time.UTC), time.Date(2014, 2, 19, 15, 25, 0, 0, time.UTC)},
		{"shifted to Start", Options{Start: start},
			start, start.Add(time.Date(2014, 2, 19, 15, 25, 0, 0, time.UTC).Sub(time.Date(2013, 12, 2, 21, 15, 0, 0, time.UTC)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := Open(path, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			msgs, err := drain(t, src)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 22695 {
				t.Fatalf("%d messages, want 22695", len(msgs))
			}
			if !msgs[0].Time.Equal(tt.first) || !msgs[len(msgs)-1].Time.Equal(tt.last) {
				t.Errorf("times %v … %v, want %v … %v", msgs[0].Time, msgs[len(msgs)-1].Time, tt.first, tt.last)
			}
			var r records.Reading
			for i, m := range msgs {
				if err := message.ParseReading(m.Value, time.Time{}, &r); err != nil {
					t.Fatal(err)
				}
				if r.Device != "machine_temperature_system_failure" || len(r.Values) != 1 || r.Values[0].Name != "value" || r.Label != "" {
					t.Fatalf("message %d: %s", i, m.Value)
				}
				// Rows are replayed in file order, and the recording's
				// clock jumps back 55 minutes once, after line 10150
				// (2014-01-07 02:55 → 02:00): a late-data case for free.
				if i > 0 {
					step, want := m.Time.Sub(msgs[i-1].Time), 5*time.Minute
					if i == 10149 {
						want = -55 * time.Minute
					}
					if step != want {
						t.Fatalf("message %d: %v after the previous one, want %v", i, step, want)
					}
				}
			}
			if err := message.ParseReading(msgs[0].Value, time.Time{}, &r); err != nil || r.Values[0].Value != 73.96732207 {
				t.Errorf("first reading %s", msgs[0].Value)
			}
		})
	}
}

func TestCSVFormats(t *testing.T) {
	clock := Options{Start: start, Period: time.Second}
	tests := []formatCase{
		{name: "time and values", file: "timestamp,temp,rpm\n2024-05-01 12:00:00,71.5,1450\n2024-05-01 12:00:05.250,71.6,1452\n",
			want: []string{
				"rec 2024-05-01T12:00:00Z [temp=71.5 rpm=1450]",
				"rec 2024-05-01T12:00:05.25Z [temp=71.6 rpm=1452]",
			}},
		{name: "time formats", file: "Time,x\n2024-05-01T12:00:00Z,1\n2024-05-01T14:00:00+02:00,2\n2024-05-01T12:00:01,3\n2024-05-02,4\n1714564800,5\n1714564800.5,6\n1714564800250,7\n2024-05-01 12:00:00+01:00,8\n",
			want: []string{
				"rec 2024-05-01T12:00:00Z [x=1]",
				"rec 2024-05-01T12:00:00Z [x=2]",
				"rec 2024-05-01T12:00:01Z [x=3]",
				"rec 2024-05-02T00:00:00Z [x=4]",
				"rec 2024-05-01T12:00:00Z [x=5]",
				"rec 2024-05-01T12:00:00.5Z [x=6]",
				"rec 2024-05-01T12:00:00.25Z [x=7]",
				"rec 2024-05-01T11:00:00Z [x=8]",
			}},
		{name: "shifted to Start", opt: Options{Start: start}, file: "ts,x\n2001-01-01 00:00:10,1\n2001-01-01 00:00:05,2\n",
			want: []string{"rec +0s [x=1]", "rec -5s [x=2]"}},
		{name: "devices and labels", file: "device_id,time,label,a,b\np1,2024-05-01T12:00:00Z,ok,1,2\np2,2024-05-01T12:00:00Z,,3,4\n",
			want: []string{
				"p1 2024-05-01T12:00:00Z [a=1 b=2] ok",
				"p2 2024-05-01T12:00:00Z [a=3 b=4]",
			}},
		{name: "device prefix", opt: Options{Device: "plant"}, file: "unit,date,x\n7,2024-05-01,1\n",
			want: []string{"plant-7 2024-05-01T00:00:00Z [x=1]"}},
		{name: "device override without a device column", opt: Options{Device: "m1"}, file: "date,x\n2024-05-01,1\n",
			want: []string{"m1 2024-05-01T00:00:00Z [x=1]"}},
		{name: "no time column: steps per device", opt: clock, file: "unit,s1,s2\n1,10,11\n1,12,13\n2,20,21\n1,14,15\n",
			want: []string{
				"1 +0s [s1=10 s2=11]",
				"1 +1s [s1=12 s2=13]",
				"2 +0s [s1=20 s2=21]",
				"1 +2s [s1=14 s2=15]",
			}},
		{name: "missing cells", file: "ts,a,b,c\n1714564800,1,NA,\n1714564801,?,nan,NaN\n1714564802, 2 , 3 ,n/a\n",
			wantErr: ErrFormat, errText: `rec.csv:4: column "c": "n/a" is not a number`},
		{name: "missing cells skipped", file: "ts,a,b,c\n1714564800,1,NA,\n1714564801,?,nan,NaN\n1714564802, 2 , 3 ,na\n",
			want: []string{
				"rec 2024-05-01T12:00:00Z [a=1]",
				"rec 2024-05-01T12:00:02Z [a=2 b=3]",
			}},
		{name: "CRLF, BOM, quotes", file: "\uFEFF\"time\",\"temp, °C\",\"note\"\r\n2024-05-01,\"1.5\",2\r\n2024-05-02,\"2\",\"3\"\r\n",
			want: []string{
				"rec 2024-05-01T00:00:00Z [temp, °C=1.5 note=2]",
				"rec 2024-05-02T00:00:00Z [temp, °C=2 note=3]",
			}},
		{name: "quoted newline", file: "time,x,label\n2024-05-01,1,\"two\nlines\"\n2024-05-02,oops,x\n",
			wantErr: ErrFormat, errText: `rec.csv:4: column "x": "oops" is not a number`},
		{name: "explicit columns, any case", opt: Options{TimeColumn: "WHEN", DeviceColumn: "Who", LabelColumn: "state"}, file: "when,who,state,id,x\n2024-05-01,a,on,5,1\n",
			want: []string{"a 2024-05-01T00:00:00Z [id=5 x=1] on"}},
		{name: "header only", file: "time,x\n", want: nil},
		{name: "unnamed column", opt: clock, file: ",x\n0,1\n", want: []string{"rec +0s [col0=0 x=1]"}},
		{name: "unknown time column", opt: Options{TimeColumn: "when"}, file: "time,x\n", wantErr: ErrOptions, errText: `no time column "when" among ["time" "x"]`},
		{name: "column used twice", opt: Options{TimeColumn: "a", DeviceColumn: "a"}, file: "a,x\n", wantErr: ErrOptions, errText: "both"},
		{name: "no Start without time column", opt: Options{Period: time.Second}, file: "x\n1\n", wantErr: ErrOptions, errText: "no time column, so Options.Start must be set"},
		{name: "no Period without time column", opt: Options{Start: start}, file: "x\n1\n", wantErr: ErrOptions, errText: "Options.Period"},
		{name: "not a number", file: "time,temp\n2024-05-01,1\n2024-05-02,hot\n", wantErr: ErrFormat, errText: `rec.csv:3: column "temp": "hot" is not a number`},
		{name: "infinite", file: "time,temp\n2024-05-01,+Inf\n", wantErr: ErrFormat, errText: `"+Inf" is not a number`},
		{name: "bad time", file: "time,temp\nyesterday,1\n", wantErr: ErrFormat, errText: `rec.csv:2: column "time": "yesterday" is not a date-time`},
		{name: "empty time", file: "time,temp\n,1\n", wantErr: ErrFormat, errText: "empty time"},
		{name: "time out of range", file: "time,temp\n1e20,1\n", wantErr: ErrFormat, errText: "out of range"},
		{name: "empty device", file: "device,time,x\n,2024-05-01,1\n", wantErr: ErrFormat, errText: `column "device": empty device`},
		{name: "wrong field count", file: "time,x\n2024-05-01,1\n2024-05-02,1,2\n", wantErr: ErrFormat, errText: "rec.csv:3: wrong number of fields"},
		{name: "bad quotes", file: "time,x\n2024-05-01,\"1\n", wantErr: ErrFormat, errText: "rec.csv:2"},
		{name: "empty file", file: "", wantErr: ErrFormat, errText: "empty file"},
		{name: "duplicate header", file: "time,x,x\n", wantErr: ErrFormat, errText: `columns 2 and 3 are both named "x"`},
		{name: "column name not UTF-8", file: "time,\xff\n", wantErr: ErrFormat, errText: "not valid UTF-8"},
		{name: "label not UTF-8", file: "time,x,label\n2024-05-01,1,\xff\n", wantErr: ErrFormat, errText: "rec.csv:2: message: invalid JSON: label"},
		{name: "no value column", file: "time,device,label\n", wantErr: ErrFormat, errText: "no value columns"},
	}
	runFormatCases(t, "rec.csv", tests)
}

func FuzzCSV(f *testing.F) {
	f.Add([]byte("timestamp,value\n2013-12-02 21:15:00,73.96732207\n2013-12-02 21:20:00,74.93588199999998\n"))
	f.Add([]byte("device_id,time,label,a,b\np1,2024-05-01T12:00:00Z,ok,1,2\np2,1714564800250,,NA,4\n"))
	f.Add([]byte("\uFEFF\"time\",\"temp, °C\"\r\n2024-05-01,\"1.5\"\r\n"))
	f.Add([]byte("unit,s1,s2\n1,10,11\n1,?,13\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := readCSV("fuzz.csv", bytes.NewReader(data), Options{Start: start, Period: time.Second})
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrOptions) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		for n := 0; n < 10000; n++ {
			m, err := src.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("error wraps no sentinel: %v", err)
				}
				break
			}
			var r records.Reading
			if err := message.ParseReading(m.Value, time.Time{}, &r); err != nil {
				t.Fatalf("message %s does not parse: %v", m.Value, err)
			}
			if r.Device != string(m.Key) || !r.Time.Equal(m.Time) {
				t.Fatalf("key %q time %v, reading %q %v", m.Key, m.Time, r.Device, r.Time)
			}
		}
	})
}

func BenchmarkCSV(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(datasets, nabCSV))
	if err != nil {
		b.Skipf("NAB machine temperature not found (see shared/datasets/README.md): %v", err)
	}
	want := strings.Count(string(data), "\n") - 1
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		src, err := readCSV("machine_temperature_system_failure.csv", bytes.NewReader(data), Options{})
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
		if n != want {
			b.Fatalf("%d messages, want %d", n, want)
		}
	}
}

// A CSV file under another extension (optdigits' .tra) opens with Format.
func TestFormatOverridesExtension(t *testing.T) {
	path := writeFile(t, "digits.tra", "a,b,Class\n1,2,7\n3,4,1\n")
	if _, err := Open(path, Options{Start: time.Unix(0, 0), Period: time.Second}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("opening .tra without a format: %v, want ErrUnsupported", err)
	}
	src, err := Open(path, Options{Start: time.Unix(0, 0), Period: time.Second, Format: "csv"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	msgs, err := drain(t, src)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if !strings.Contains(string(m.Value), `"label":`) {
			t.Errorf("message %s has no label", m.Value)
		}
	}
	if len(msgs) != 2 {
		t.Errorf("%d messages, want 2", len(msgs))
	}
	if _, err := Open(path, Options{Format: "xls"}); !errors.Is(err, ErrOptions) {
		t.Errorf("format xls: %v, want ErrOptions", err)
	}
}

// With Binary, every kind of recording sends the same readings in the
// binary format.
func TestBinaryEncoding(t *testing.T) {
	for _, tt := range []struct {
		path string
		opt  Options
	}{
		{filepath.Join(datasets, "basicmotions", "BasicMotions_TEST.ts"), Options{Start: start, Period: 100 * time.Millisecond}},
		{filepath.Join(datasets, "optdigits", "optdigits.tes"), Options{Start: start, Period: time.Millisecond, Format: "csv"}},
		{filepath.Join(datasets, "cmapss_fd001", "train_FD001.txt"), Options{Start: start, Period: time.Second, Format: "cmapss"}},
	} {
		read := func(binary bool) []Message {
			o := tt.opt
			o.Binary = binary
			src, err := Open(tt.path, o)
			if err != nil {
				t.Skipf("%s: %v", tt.path, err)
			}
			defer src.Close()
			msgs, err := drain(t, src)
			if err != nil {
				t.Fatal(err)
			}
			return msgs
		}
		js, bin := read(false), read(true)
		if len(js) != len(bin) || len(js) == 0 {
			t.Fatalf("%s: %d JSON messages, %d binary", tt.path, len(js), len(bin))
		}
		var a, b records.Reading
		for i := range js {
			if bin[i].Value[0] != message.BinaryMagic {
				t.Fatalf("%s: message %d is not binary", tt.path, i)
			}
			if err := message.ParseReading(js[i].Value, time.Time{}, &a); err != nil {
				t.Fatal(err)
			}
			if err := message.ParseReading(bin[i].Value, time.Time{}, &b); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(a) != fmt.Sprint(b) || string(js[i].Key) != string(bin[i].Key) {
				t.Fatalf("%s: message %d: JSON %+v, binary %+v", tt.path, i, a, b)
			}
		}
	}
}
