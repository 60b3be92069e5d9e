package message

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/muonml/muon/records"
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
