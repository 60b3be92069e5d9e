package message

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
)

// Kafka header names of an image record.
const (
	HeaderDevice      = "device"
	HeaderLabel       = "label" // optional
	HeaderContentType = "content-type"
)

// Content types returned by ContentType.
const (
	ContentTypePNG  = "image/png"
	ContentTypeJPEG = "image/jpeg"
	ContentTypePGM  = "image/x-portable-graymap"
)

// ContentType sniffs the image format from the first bytes of data and
// returns ContentTypePNG, ContentTypeJPEG or ContentTypePGM (binary P5 or
// ASCII P2), or "" for anything else.
func ContentType(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return ContentTypePNG
	case bytes.HasPrefix(data, []byte("\xff\xd8\xff")):
		return ContentTypeJPEG
	case len(data) >= 3 && data[0] == 'P' && (data[1] == '5' || data[1] == '2') && (isPNMSpace(data[2]) || data[2] == '#'):
		return ContentTypePGM
	}
	return ""
}

// ImageLimits bounds what DecodeImage accepts. A zero or negative field
// takes its value from DefaultImageLimits; there is deliberately no
// "unlimited" setting short of math.MaxInt.
type ImageLimits struct {
	MaxWidth, MaxHeight int // pixels
	MaxPixels           int // width × height
	MaxBytes            int // size of the encoded file
}

// DefaultImageLimits is generous for inspection cameras and still refuses
// images whose pixels would not fit comfortably in a worker's memory.
var DefaultImageLimits = ImageLimits{
	MaxWidth:  8192,
	MaxHeight: 8192,
	MaxPixels: 16 << 20,
	MaxBytes:  32 << 20,
}

func (lim ImageLimits) withDefaults() ImageLimits {
	if lim.MaxWidth <= 0 {
		lim.MaxWidth = DefaultImageLimits.MaxWidth
	}
	if lim.MaxHeight <= 0 {
		lim.MaxHeight = DefaultImageLimits.MaxHeight
	}
	if lim.MaxPixels <= 0 {
		lim.MaxPixels = DefaultImageLimits.MaxPixels
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultImageLimits.MaxBytes
	}
	return lim
}

// DecodeImage decodes a PNG, JPEG or PGM image and returns it as 8-bit
// grayscale with bounds starting at (0, 0).
//
// The file size and the dimensions declared in the image header are checked
// against lim before any pixel is decoded, so a few hundred bytes claiming
// 100000×100000 pixels fail with ErrImageTooLarge without allocating for
// them. Color images are converted as color.GrayModel does (ITU-R BT.601
// luma weights); grayscale images with more than 8 bits keep their high
// byte. Grayscale PNG and JPEG files, the usual case for inspection cameras,
// come back from the standard decoders as *image.Gray and are returned
// without a copy.
func DecodeImage(data []byte, lim ImageLimits) (*image.Gray, error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrImageTooLarge, len(data), lim.MaxBytes)
	}
	ct := ContentType(data)
	var (
		cfg image.Config
		err error
	)
	switch ct {
	case ContentTypePNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	case ContentTypeJPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	case ContentTypePGM:
		var h pgmHeader
		h, _, err = parsePGMHeader(data)
		cfg = image.Config{Width: h.width, Height: h.height}
	default:
		return nil, fmt.Errorf("%w: %d bytes starting %q, want PNG, JPEG or PGM", ErrImageFormat, len(data), data[:min(len(data), 8)])
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s header: %v", ErrImageCorrupt, ct, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("%w: %s declares %d×%d pixels", ErrImageCorrupt, ct, cfg.Width, cfg.Height)
	}
	if cfg.Width > lim.MaxWidth || cfg.Height > lim.MaxHeight ||
		int64(cfg.Width)*int64(cfg.Height) > int64(lim.MaxPixels) {
		return nil, fmt.Errorf("%w: %s declares %d×%d pixels, the limit is %d×%d and %d pixels",
			ErrImageTooLarge, ct, cfg.Width, cfg.Height, lim.MaxWidth, lim.MaxHeight, lim.MaxPixels)
	}

	var img image.Image
	switch ct {
	case ContentTypePNG:
		img, err = png.Decode(bytes.NewReader(data))
	case ContentTypeJPEG:
		img, err = jpeg.Decode(bytes.NewReader(data))
	default:
		img, err = decodePGMBytes(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrImageCorrupt, ct, err)
	}
	return toGray(img), nil
}

// toGray converts img to *image.Gray, without copying when it already is one
// with bounds at the origin.
func toGray(img image.Image) *image.Gray {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.Gray:
		if b.Min == (image.Point{}) {
			return m
		}
	case *image.YCbCr:
		// What color.GrayModel computes from m.At, without the interface
		// conversions per pixel.
		out := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
		for y := 0; y < b.Dy(); y++ {
			row := out.Pix[y*out.Stride : y*out.Stride+b.Dx()]
			for x := range row {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl, _ := color.YCbCr{Y: m.Y[yi], Cb: m.Cb[ci], Cr: m.Cr[ci]}.RGBA()
				row[x] = uint8((19595*r + 38470*g + 7471*bl + 1<<15) >> 24)
			}
		}
		return out
	case *image.Gray16:
		out := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
		for y := 0; y < b.Dy(); y++ {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			row := out.Pix[y*out.Stride : y*out.Stride+b.Dx()]
			for x := range row {
				row[x] = src[2*x]
			}
		}
		return out
	}
	out := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		row := out.Pix[y*out.Stride : y*out.Stride+b.Dx()]
		for x := range row {
			row[x] = color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y
		}
	}
	return out
}
