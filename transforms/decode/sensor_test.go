package decode

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
)

// basicMotions is one time step of the BasicMotions smartwatch data, as a
// producer sends it.
var basicMotions = []byte(`{"device":"BasicMotions_TRAIN-0001","ts":"2024-05-01T12:00:00.000Z","values":{"dim0":0.079106,"dim1":0.394032,"dim2":0.551444,"dim3":0.351565,"dim4":0.02381,"dim5":-0.125399},"label":"Standing"}`)

// TestSensorParseErrors checks that each kind of bad reading fails with its
// sentinel error, which the pipeline tests can only see as text.

// at is the Kafka timestamp of the test records.
var at = time.Date(2024, 5, 1, 12, 0, 0, 250_000_123, time.UTC)

func TestSensorParseErrors(t *testing.T) {
	fn := &sensorFn{Params: Params{MaxBytes: 256}}
	for _, tc := range []struct {
		name  string
		value string
		want  error
	}{
		{"bad JSON", `{"device":"d","values":{"a":1}`, message.ErrSyntax},
		{"tombstone", "", message.ErrSyntax},
		{"missing device", `{"values":{"a":1}}`, message.ErrMissingDevice},
		{"non-numeric value", `{"device":"d","values":{"a":"high"}}`, message.ErrNonNumeric},
		{"empty values", `{"device":"d","values":{}}`, message.ErrMissingValues},
		{"bad ts", `{"device":"d","ts":"yesterday","values":{"a":1}}`, message.ErrBadTimestamp},
		{"over MaxBytes", `{"device":"d","values":{"a":1},"pad":"` + strings.Repeat("x", 256) + `"}`, message.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out records.Reading
			err := fn.parse(&kafkaio.Record{Value: []byte(tc.value)}, &out)
			if !errors.Is(err, tc.want) {
				t.Errorf("parse(%q): %v, want %v", tc.value, err, tc.want)
			}
		})
	}
}

func TestSensorParseKeepsOrderAndSource(t *testing.T) {
	fn := &sensorFn{Params: Params{MaxBytes: message.MaxReadingBytes}}
	r := kafkaio.Record{Topic: "sensors", Partition: 3, Offset: 99, Value: basicMotions, Time: at}
	var out records.Reading
	if err := fn.parse(&r, &out); err != nil {
		t.Fatal(err)
	}
	if out.Source != (records.Source{Topic: "sensors", Partition: 3, Offset: 99}) {
		t.Errorf("source %+v", out.Source)
	}
	if want := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC); !out.Time.Equal(want) {
		t.Errorf("time %v, want %v from ts (not the Kafka timestamp)", out.Time, want)
	}
	var names []string
	for _, v := range out.Values {
		names = append(names, v.Name)
	}
	if got := strings.Join(names, ","); got != "dim0,dim1,dim2,dim3,dim4,dim5" {
		t.Errorf("value order %s", got)
	}
}

func noReading(records.Reading) {}
func noRecord(kafkaio.Record)   {}

// BenchmarkDecodeSensor measures the per-record cost of the sensor DoFn's
// decode path, emitters excluded.
func BenchmarkDecodeSensor(b *testing.B) {
	for _, bm := range []struct {
		name  string
		value []byte
	}{
		{"basicmotions", basicMotions},
		// A bad record costs a dead letter: its headers and error text.
		{"deadletter", []byte(`{"device":"BasicMotions_TRAIN-0001","values":{"dim0":"high"}}`)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			fn := &sensorFn{Params: Params{MaxBytes: message.MaxReadingBytes}}
			fn.Setup()
			r := kafkaio.Record{Topic: "sensors", Partition: 3, Offset: 1_234_567,
				Key: []byte("BasicMotions_TRAIN-0001"), Value: bm.value, Time: at}
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.value)))
			for b.Loop() {
				fn.decode(&r, noReading, noRecord)
			}
			if fn.c.nOK+fn.c.nDead == 0 {
				b.Fatal("nothing decoded")
			}
		})
	}
}
