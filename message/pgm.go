package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"slices"
	"strconv"
)

func init() {
	image.RegisterFormat("pgm", "P5", decodePGM, decodePGMConfig)
	image.RegisterFormat("pgm", "P2", decodePGM, decodePGMConfig)
}

// maxPGMSide bounds each dimension while parsing so that width×height×2
// cannot overflow; real limits are applied by DecodeImage.
const maxPGMSide = 1 << 30

var errTruncated = errors.New("truncated raster")

type pgmHeader struct {
	plain         bool // P2: ASCII samples
	width, height int
	maxval        int
}

// pgmReader is what the PGM parser reads from; *bytes.Reader and
// *bufio.Reader both qualify.
type pgmReader interface {
	io.Reader
	io.ByteReader
}

func isPNMSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// parsePGMHeader parses the header at the start of data and returns it with
// the offset of the first raster byte.
func parsePGMHeader(data []byte) (pgmHeader, int, error) {
	r := bytes.NewReader(data)
	h, err := readPGMHeader(r)
	return h, len(data) - r.Len(), err
}

// readPGMHeader reads "P5" or "P2", width, height and maxval, with '#'
// comments allowed wherever whitespace is, and the single whitespace
// character (or comment) that ends the header.
func readPGMHeader(r pgmReader) (pgmHeader, error) {
	var h pgmHeader
	var magic [2]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return h, fmt.Errorf("pgm: reading magic: %w", noEOF(err))
	}
	switch string(magic[:]) {
	case "P5":
	case "P2":
		h.plain = true
	default:
		return h, fmt.Errorf("pgm: magic %q, want P5 or P2", magic[:])
	}
	// c is always the next unconsumed byte, read ahead.
	c, err := r.ReadByte()
	if err != nil {
		return h, fmt.Errorf("pgm: after magic: %w", noEOF(err))
	}
	for _, field := range [...]struct {
		name string
		dst  *int
	}{{"width", &h.width}, {"height", &h.height}, {"maxval", &h.maxval}} {
		if !isPNMSpace(c) && c != '#' {
			return h, fmt.Errorf("pgm: want whitespace before %s, got %q", field.name, c)
		}
		for isPNMSpace(c) || c == '#' {
			if c == '#' {
				if err := skipPGMComment(r); err != nil {
					return h, fmt.Errorf("pgm: reading %s: %w", field.name, err)
				}
			}
			if c, err = r.ReadByte(); err != nil {
				return h, fmt.Errorf("pgm: reading %s: %w", field.name, noEOF(err))
			}
		}
		n, digits := 0, 0
		for ; '0' <= c && c <= '9'; digits++ {
			if n = n*10 + int(c-'0'); n > maxPGMSide {
				return h, fmt.Errorf("pgm: %s too large", field.name)
			}
			if c, err = r.ReadByte(); err != nil {
				return h, fmt.Errorf("pgm: reading %s: %w", field.name, noEOF(err))
			}
		}
		if digits == 0 {
			return h, fmt.Errorf("pgm: %s: want a decimal number, got %q", field.name, c)
		}
		*field.dst = n
	}
	// c follows maxval: the one whitespace character before the raster, or a
	// comment running to the end of its line.
	switch {
	case isPNMSpace(c):
	case c == '#':
		if err := skipPGMComment(r); err != nil {
			return h, fmt.Errorf("pgm: after maxval: %w", err)
		}
	default:
		return h, fmt.Errorf("pgm: unexpected %q after maxval", c)
	}
	if h.width < 1 || h.height < 1 {
		return h, fmt.Errorf("pgm: %d×%d pixels", h.width, h.height)
	}
	if h.maxval < 1 || h.maxval > 65535 {
		return h, fmt.Errorf("pgm: maxval %d, want 1–65535", h.maxval)
	}
	return h, nil
}

// skipPGMComment skips to and including the end of the line.
func skipPGMComment(r pgmReader) error {
	for {
		c, err := r.ReadByte()
		if err != nil {
			return noEOF(err)
		}
		if c == '\n' || c == '\r' {
			return nil
		}
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func asPGMReader(r io.Reader) pgmReader {
	if pr, ok := r.(pgmReader); ok {
		return pr
	}
	return bufio.NewReader(r)
}

func decodePGMConfig(r io.Reader) (image.Config, error) {
	h, err := readPGMHeader(asPGMReader(r))
	if err != nil {
		return image.Config{}, err
	}
	model := color.GrayModel
	if h.maxval > 255 {
		model = color.Gray16Model
	}
	return image.Config{ColorModel: model, Width: h.width, Height: h.height}, nil
}

func decodePGMBytes(data []byte) (image.Image, error) {
	return decodePGM(bytes.NewReader(data))
}

// decodePGM decodes a P5 or P2 image: *image.Gray when maxval ≤ 255,
// *image.Gray16 otherwise, with samples scaled to the full range. It
// allocates in step with the data actually read, so a short input with a
// huge header fails before using much memory even without DecodeImage's
// checks.
func decodePGM(r io.Reader) (image.Image, error) {
	pr := asPGMReader(r)
	h, err := readPGMHeader(pr)
	if err != nil {
		return nil, err
	}
	n := h.width * h.height
	if h.plain {
		return decodePlainPGM(pr, h, n)
	}
	bps := 1
	if h.maxval > 255 {
		bps = 2
	}
	raster, err := readRaster(pr, n*bps)
	if err != nil {
		return nil, err
	}
	rect := image.Rect(0, 0, h.width, h.height)
	if bps == 1 {
		img := &image.Gray{Pix: raster, Stride: h.width, Rect: rect}
		if h.maxval == 255 {
			return img, nil
		}
		var lut [256]byte
		for v := range lut {
			lut[v] = byte((v*255 + h.maxval/2) / h.maxval)
		}
		for i, v := range raster {
			if int(v) > h.maxval {
				return nil, fmt.Errorf("pgm: sample %d at pixel %d exceeds maxval %d", v, i, h.maxval)
			}
			raster[i] = lut[v]
		}
		return img, nil
	}
	img := &image.Gray16{Pix: raster, Stride: 2 * h.width, Rect: rect}
	if h.maxval == 65535 {
		return img, nil
	}
	for i := 0; i < len(raster); i += 2 {
		v := int(raster[i])<<8 | int(raster[i+1])
		if v > h.maxval {
			return nil, fmt.Errorf("pgm: sample %d at pixel %d exceeds maxval %d", v, i/2, h.maxval)
		}
		v = (v*65535 + h.maxval/2) / h.maxval
		raster[i], raster[i+1] = byte(v>>8), byte(v)
	}
	return img, nil
}

// readRaster reads exactly need bytes. From a *bytes.Reader it knows the
// remaining length and allocates once; otherwise it grows the buffer as data
// arrives.
func readRaster(r pgmReader, need int) ([]byte, error) {
	if br, ok := r.(*bytes.Reader); ok {
		if br.Len() < need {
			return nil, fmt.Errorf("pgm: %w: %d of %d bytes", errTruncated, br.Len(), need)
		}
		buf := make([]byte, need)
		_, err := io.ReadFull(br, buf)
		return buf, err
	}
	buf := make([]byte, 0, min(need, 1<<20))
	for len(buf) < need {
		chunk := min(need-len(buf), max(len(buf), 1<<20))
		buf = slices.Grow(buf, chunk)
		n, err := io.ReadFull(r, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+n]
		if err != nil {
			return nil, fmt.Errorf("pgm: %w: %d of %d bytes", errTruncated, len(buf), need)
		}
	}
	return buf, nil
}

func decodePlainPGM(r pgmReader, h pgmHeader, n int) (image.Image, error) {
	rect := image.Rect(0, 0, h.width, h.height)
	var (
		gray   *image.Gray
		gray16 *image.Gray16
	)
	// Grow with the data, as readRaster does: each sample takes at least two
	// bytes of input.
	if h.maxval <= 255 {
		gray = &image.Gray{Pix: make([]byte, 0, min(n, 1<<16)), Stride: h.width, Rect: rect}
	} else {
		gray16 = &image.Gray16{Pix: make([]byte, 0, min(2*n, 1<<16)), Stride: 2 * h.width, Rect: rect}
	}
	c, err := r.ReadByte()
	for i := 0; i < n; i++ {
		for err == nil && isPNMSpace(c) {
			c, err = r.ReadByte()
		}
		if err != nil {
			return nil, fmt.Errorf("pgm: %w: %d of %d samples", errTruncated, i, n)
		}
		v, digits := 0, 0
		for err == nil && '0' <= c && c <= '9' {
			if v = v*10 + int(c-'0'); v > h.maxval {
				return nil, fmt.Errorf("pgm: sample %d exceeds maxval %d", i, h.maxval)
			}
			digits++
			c, err = r.ReadByte()
		}
		if digits == 0 {
			return nil, fmt.Errorf("pgm: sample %d: unexpected %q", i, c)
		}
		if err == nil && !isPNMSpace(c) {
			return nil, fmt.Errorf("pgm: sample %d: unexpected %q after the number", i, c)
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if gray != nil {
			gray.Pix = append(gray.Pix, byte((v*255+h.maxval/2)/h.maxval))
		} else {
			v = (v*65535 + h.maxval/2) / h.maxval
			gray16.Pix = append(gray16.Pix, byte(v>>8), byte(v))
		}
	}
	if gray != nil {
		return gray, nil
	}
	return gray16, nil
}

// EncodePGM writes img as a binary (P5) 8-bit PGM file.
func EncodePGM(w io.Writer, img *image.Gray) error {
	if img == nil || img.Rect.Empty() {
		return errors.New("message: EncodePGM: empty image")
	}
	width, height := img.Rect.Dx(), img.Rect.Dy()
	buf := make([]byte, 0, 32+width*height)
	buf = append(buf, "P5\n"...)
	buf = strconv.AppendInt(buf, int64(width), 10)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, int64(height), 10)
	buf = append(buf, "\n255\n"...)
	for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
		i := img.PixOffset(img.Rect.Min.X, y)
		buf = append(buf, img.Pix[i:i+width]...)
	}
	_, err := w.Write(buf)
	return err
}
