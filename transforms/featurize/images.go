package featurize

import (
	"fmt"
	"image"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/records"
	"golang.org/x/image/draw"
)

func init() {
	register.DoFn2x0[records.Image, func(Row)](&imageFn{})
}

// DefaultImageSide is the width and height of image rows for a spec that
// names none.
const DefaultImageSide = 32

// ImageParams configures Images.
type ImageParams struct {
	// Width and Height are the size every image is resized to. Required.
	Width, Height int
}

// Images turns decoded grayscale images into rows of Width×Height
// features in [0, 1], row-major: PCollection<records.Image> →
// PCollection<Row>. It panics if the size is not positive.
func Images(s beam.Scope, p ImageParams, images beam.PCollection) beam.PCollection {
	s = s.Scope("featurize.Images")
	if p.Width <= 0 || p.Height <= 0 || p.Width*p.Height > 1<<24 {
		panic(fmt.Sprintf("featurize.Images: size %d×%d", p.Width, p.Height))
	}
	return beam.ParDo(s, &imageFn{Width: p.Width, Height: p.Height}, images)
}

type imageFn struct {
	Width, Height int

	dst *image.Gray
}

func (fn *imageFn) ProcessElement(im records.Image, emit func(Row)) {
	if fn.dst == nil {
		fn.dst = image.NewGray(image.Rect(0, 0, fn.Width, fn.Height))
	}
	emit(Row{Key: im.Device, Time: im.Time, Features: Pixels(nil, fn.dst, im), Label: im.Label, ID: im.Source.ID(), Source: im.Source})
}

// Pixels resizes im into scratch (Catmull-Rom) and appends its pixels,
// scaled to [0, 1], to dst. scratch's bounds set the size.
func Pixels(dst []float64, scratch *image.Gray, im records.Image) []float64 {
	src := &image.Gray{Pix: im.Pix, Stride: im.Width, Rect: image.Rect(0, 0, im.Width, im.Height)}
	draw.CatmullRom.Scale(scratch, scratch.Rect, src, src.Rect, draw.Src, nil)
	for _, v := range scratch.Pix {
		dst = append(dst, float64(v)/255)
	}
	return dst
}
