package featurize_test

import (
	"image"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/transforms/decode"
	"github.com/muonml/muon/transforms/featurize"
)

func init() {
	register.Function1x1(rowShape)
}

func tiles(t testing.TB, n int) []records.Image {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "datasets", "magnetic_tile", "MT_*", "Imgs", "*.jpg"))
	if len(files) == 0 {
		t.Skip("magnetic_tile dataset not available")
	}
	var out []records.Image
	for _, f := range files[:min(n, len(files))] {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rec := kafkaio.Record{Topic: "tiles", Value: data, Time: time.Unix(0, 0),
			Headers: []kafkaio.Header{{Key: message.HeaderDevice, Value: []byte("cam")}, {Key: message.HeaderLabel, Value: []byte(filepath.Base(filepath.Dir(filepath.Dir(f))))}}}
		im, err := decode.DecodeImage(&rec, message.ImageLimits{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, im)
	}
	return out
}

func TestPixels(t *testing.T) {
	// Same size: the pixels come back unchanged, scaled to [0, 1].
	im := records.Image{Width: 3, Height: 2, Pix: []byte{0, 51, 102, 153, 204, 255}}
	got := featurize.Pixels(nil, image.NewGray(image.Rect(0, 0, 3, 2)), im)
	for i, want := range []float64{0, 0.2, 0.4, 0.6, 0.8, 1} {
		if d := got[i] - want; d > 1e-12 || d < -1e-12 {
			t.Errorf("pixel %d = %v, want %v", i, got[i], want)
		}
	}
	// A uniform image stays uniform at any size.
	flat := records.Image{Width: 40, Height: 30, Pix: make([]byte, 1200)}
	for i := range flat.Pix {
		flat.Pix[i] = 128
	}
	for _, v := range featurize.Pixels(nil, image.NewGray(image.Rect(0, 0, 7, 9)), flat) {
		if v != 128.0/255 {
			t.Fatalf("uniform image resized to %v", v)
		}
	}
	// Real tiles of every size come out as 32×32 values in [0, 1].
	for _, im := range tiles(t, 20) {
		got := featurize.Pixels(nil, image.NewGray(image.Rect(0, 0, 32, 32)), im)
		if len(got) != 32*32 {
			t.Fatalf("%d features", len(got))
		}
		for _, v := range got {
			if v < 0 || v > 1 {
				t.Fatalf("pixel %v outside [0, 1]", v)
			}
		}
	}
}

func rowShape(r featurize.Row) int { return len(r.Features) }

func TestImagesPipeline(t *testing.T) {
	ims := tiles(t, 10)
	p, s := beam.NewPipelineWithRoot()
	rows := featurize.Images(s, featurize.ImageParams{Width: 24, Height: 16}, beam.CreateList(s, ims))
	shapes := beam.ParDo(s, rowShape, rows)
	want := make([]any, len(ims))
	for i := range want {
		want[i] = 24 * 16
	}
	passert.Equals(s, shapes, want...)
	ptest.RunAndValidate(t, p)
}

func BenchmarkDecodeResize(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "datasets", "magnetic_tile", "MT_Blowhole", "Imgs", "*.jpg"))
	if len(files) == 0 {
		b.Skip("magnetic_tile dataset not available")
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		b.Fatal(err)
	}
	scratch := image.NewGray(image.Rect(0, 0, 64, 64))
	dst := make([]float64, 0, 64*64)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	rec := kafkaio.Record{Value: data, Headers: []kafkaio.Header{{Key: message.HeaderDevice, Value: []byte("cam")}}}
	for b.Loop() {
		im, err := decode.DecodeImage(&rec, message.ImageLimits{})
		if err != nil {
			b.Fatal(err)
		}
		dst = featurize.Pixels(dst[:0], scratch, im)
	}
}
