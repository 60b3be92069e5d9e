package message

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/muonml/muon/records"
	"github.com/valyala/fastjson"
)

// benchReading is a typical 112-byte reading.
var benchReading = []byte(`{"device":"press-07","ts":"2024-05-01T12:00:00.250Z","values":{"temp":71.5,"vib":0.031,"rpm":1450},"label":"ok"}`)

// benchBasicMotions is one time step of the BasicMotions smartwatch data.
var benchBasicMotions = []byte(`{"device":"BasicMotions_TRAIN-0001","ts":"2024-05-01T12:00:00.000Z","values":{"dim0":0.079106,"dim1":0.394032,"dim2":0.551444,"dim3":0.351565,"dim4":0.02381,"dim5":-0.125399},"label":"Standing"}`)

// jsonReading is what a decode stage would write with encoding/json. It
// loses the order of values and cannot take epoch-millisecond timestamps,
// so it does less than ParseReading.
type jsonReading struct {
	Device string             `json:"device"`
	TS     time.Time          `json:"ts"`
	Values map[string]float64 `json:"values"`
	Label  string             `json:"label"`
}

func BenchmarkParseReading(b *testing.B) {
	for _, bm := range []struct {
		name string
		data []byte
	}{{"press", benchReading}, {"basicmotions", benchBasicMotions}} {
		b.Run(bm.name, func(b *testing.B) {
			var r records.Reading
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.data)))
			for b.Loop() {
				if err := ParseReading(bm.data, time.Time{}, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
		// fresh: a new records.Reading per message, so every string is allocated.
		b.Run(bm.name+"/fresh", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.data)))
			for b.Loop() {
				var r records.Reading
				if err := ParseReading(bm.data, time.Time{}, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bm.name+"/encoding-json", func(b *testing.B) {
			var r jsonReading
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.data)))
			for b.Loop() {
				if err := json.Unmarshal(bm.data, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendReading(b *testing.B) {
	var r records.Reading
	if err := ParseReading(benchBasicMotions, time.Time{}, &r); err != nil {
		b.Fatal(err)
	}
	buf := AppendReading(nil, r)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		buf = AppendReading(buf[:0], r)
	}
}

func BenchmarkDecodeImage(b *testing.B) {
	path := filepath.Join(magneticTileDir, "MT_Blowhole", "Imgs", "exp1_num_108719.jpg")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Skipf("magnetic-tile dataset not found (see shared/datasets/README.md): %v", err)
	}
	img, err := DecodeImage(data, DefaultImageLimits)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: %d bytes, %v", filepath.Base(path), len(data), img.Rect)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeImage(data, DefaultImageLimits); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeImagePGM(b *testing.B) {
	data := encodePGM(b, gradient(400, 300))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeImage(data, DefaultImageLimits); err != nil {
			b.Fatal(err)
		}
	}
}

// benchDigits is an optdigits row as muon produce sends it: 64 values.
var benchDigits = func() []byte {
	r := records.Reading{Device: "optdigits.tra-0001", Time: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), Label: "7"}
	for i := range 64 {
		r.Values = append(r.Values, records.Value{Name: fmt.Sprintf("Block %d", i+1), Value: float64((i * 7) % 17)})
	}
	return AppendReading(nil, r)
}()

// BenchmarkDecodeFormats decodes the same readings as JSON with
// ParseReading, as JSON with fastjson (a tuned allocation-free parser,
// reading the same fields into the same records.Reading), and in the
// binary format.
func BenchmarkDecodeFormats(b *testing.B) {
	for _, bm := range []struct {
		name string
		data []byte
	}{{"press", benchReading}, {"basicmotions", benchBasicMotions}, {"digits", benchDigits}} {
		var r records.Reading
		if err := ParseReading(bm.data, time.Time{}, &r); err != nil {
			b.Fatal(err)
		}
		bin, err := AppendReadingBinary(nil, r)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bm.name+"/json", func(b *testing.B) {
			var r records.Reading
			b.SetBytes(int64(len(bm.data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := ParseReading(bm.data, time.Time{}, &r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(r.Values)), "ns/value")
		})
		b.Run(bm.name+"/fastjson", func(b *testing.B) {
			var p fastjson.Parser
			var r records.Reading
			b.SetBytes(int64(len(bm.data)))
			b.ReportAllocs()
			for b.Loop() {
				v, err := p.ParseBytes(bm.data)
				if err != nil {
					b.Fatal(err)
				}
				r.Device = string(v.GetStringBytes("device"))
				ts, err := time.Parse(time.RFC3339Nano, string(v.GetStringBytes("ts")))
				if err != nil {
					b.Fatal(err)
				}
				r.Time = ts
				r.Label = string(v.GetStringBytes("label"))
				r.Values = r.Values[:0]
				v.GetObject("values").Visit(func(k []byte, x *fastjson.Value) {
					f, _ := x.Float64()
					r.Values = append(r.Values, records.Value{Name: string(k), Value: f})
				})
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(r.Values)), "ns/value")
		})
		b.Run(bm.name+"/binary", func(b *testing.B) {
			var r records.Reading
			b.SetBytes(int64(len(bin)))
			b.ReportAllocs()
			for b.Loop() {
				if err := ParseReading(bin, time.Time{}, &r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(r.Values)), "ns/value")
		})
	}
}
