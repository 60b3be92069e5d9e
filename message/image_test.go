package message

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const magneticTileDir = "../../../shared/datasets/magnetic_tile"

// gradient returns a w×h grayscale test image.
func gradient(w, h int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetGray(x, y, color.Gray{uint8(x*7 + y*13)})
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePGM(t testing.TB, img *image.Gray) []byte {
	var b bytes.Buffer
	if err := EncodePGM(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestContentType(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"\x89PNG\r\n\x1a\n....", ContentTypePNG},
		{"\xff\xd8\xff\xe0", ContentTypeJPEG},
		{"P5\n2 2\n255\n", ContentTypePGM},
		{"P2 2 2 255", ContentTypePGM},
		{"P5#c\n", ContentTypePGM},
		{"P6\n2 2\n255\n", ""},
		{"P5", ""},
		{"GIF89a", ""},
		{"", ""},
		{`{"device":"d"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ContentType([]byte(tt.in)); got != tt.want {
				t.Errorf("ContentType(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestDecodeImageMagneticTile decodes every image of the dataset and checks
// it against the standard decoders.
func TestDecodeImageMagneticTile(t *testing.T) {
	if _, err := os.Stat(magneticTileDir); err != nil {
		t.Skipf("magnetic-tile dataset not found at %s (see shared/datasets/README.md): %v", magneticTileDir, err)
	}
	var n int
	err := filepath.WalkDir(magneticTileDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ext := strings.ToLower(filepath.Ext(path))
		if d.IsDir() || (ext != ".jpg" && ext != ".png") {
			return nil
		}
		n++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		got, err := DecodeImage(data, DefaultImageLimits)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		want, _, err := image.Decode(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: image.Decode: %v", path, err)
			return nil
		}
		wg, ok := want.(*image.Gray)
		if !ok {
			t.Errorf("%s: standard decoder returns %T, want *image.Gray", path, want)
			return nil
		}
		if got.Rect != wg.Rect || !bytes.Equal(got.Pix, wg.Pix) {
			t.Errorf("%s: pixels differ from the standard decoder", path)
		}
		if want := map[string]string{".jpg": ContentTypeJPEG, ".png": ContentTypePNG}[ext]; ContentType(data) != want {
			t.Errorf("%s: ContentType = %q, want %q", path, ContentType(data), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no .jpg or .png under %s", magneticTileDir)
	}
	t.Logf("decoded %d images", n)
}

// pngChunk frames a PNG chunk with its length and CRC.
func pngChunk(typ string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[4:]))
}

// hugePNG is a valid-looking PNG header declaring w×h 8-bit gray pixels,
// followed by a tiny IDAT.
func hugePNG(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 0, 0, 0, 0) // depth 8, gray, deflate, filter 0, no interlace
	b := []byte("\x89PNG\r\n\x1a\n")
	b = append(b, pngChunk("IHDR", ihdr)...)
	b = append(b, pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(b, pngChunk("IEND", nil)...)
}

// hugeJPEG patches the SOF0 dimensions of a real JPEG.
func hugeJPEG(t testing.TB, w, h uint16) []byte {
	b := encodeJPEG(t, gradient(16, 16))
	i := bytes.Index(b, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0 marker")
	}
	binary.BigEndian.PutUint16(b[i+5:], h)
	binary.BigEndian.PutUint16(b[i+7:], w)
	return b
}

func TestDecodeImageLimits(t *testing.T) {
	small := gradient(300, 200)
	tests := []struct {
		name string
		data []byte
		lim  ImageLimits
		want error
	}{
		{"PNG 100000×100000", hugePNG(100000, 100000), ImageLimits{}, ErrImageTooLarge},
		{"PNG 8192×8192 over the pixel limit", hugePNG(8192, 8192), ImageLimits{}, ErrImageTooLarge},
		{"PNG 2^31-1 wide", hugePNG(1<<31-1, 1), ImageLimits{}, ErrImageTooLarge},
		{"PGM 100000×100000", []byte("P5\n100000 100000\n255\n\x00\x00"), ImageLimits{}, ErrImageTooLarge},
		{"PGM 2^30×2^30 plain", []byte("P2 1073741824 1073741824 65535 1 2 3"), ImageLimits{}, ErrImageTooLarge},
		{"JPEG 65535×65535", hugeJPEG(t, 65535, 65535), ImageLimits{}, ErrImageTooLarge},
		{"width limit", encodePNG(t, small), ImageLimits{MaxWidth: 299}, ErrImageTooLarge},
		{"height limit", encodeJPEG(t, small), ImageLimits{MaxHeight: 199}, ErrImageTooLarge},
		{"pixel limit", encodePGM(t, small), ImageLimits{MaxPixels: 300*200 - 1}, ErrImageTooLarge},
		{"byte limit", encodePGM(t, small), ImageLimits{MaxBytes: 1000}, ErrImageTooLarge},
		{"at the limits", encodePGM(t, small), ImageLimits{MaxWidth: 300, MaxHeight: 200, MaxPixels: 300 * 200, MaxBytes: 60015}, nil},
		{"PNG 0×5", hugePNG(0, 5), ImageLimits{}, ErrImageCorrupt},
		{"GIF", []byte("GIF89a\x01\x00\x01\x00"), ImageLimits{}, ErrImageFormat},
		{"empty", nil, ImageLimits{}, ErrImageFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := DecodeImage(tt.data, tt.lim)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == ErrImageTooLarge {
				if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
					t.Errorf("allocated %d bytes before refusing", n)
				}
			}
		})
	}
}

func TestDecodeImageTruncated(t *testing.T) {
	img := gradient(64, 48)
	files := map[string][]byte{
		"png":       encodePNG(t, img),
		"jpeg":      encodeJPEG(t, img),
		"pgm":       encodePGM(t, img),
		"pgm plain": []byte("P2\n3 2\n255\n0 1 2\n3 4 5\n"),
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeImage(data, DefaultImageLimits); err != nil {
				t.Fatalf("complete file: %v", err)
			}
			for n := 0; n < len(data)-1; n += 1 + n/8 {
				_, err := DecodeImage(data[:n], DefaultImageLimits)
				if err == nil {
					// A JPEG cut inside its last scan still decodes (the
					// standard decoder fills the rest), but nothing shorter
					// than the header may.
					if name == "jpeg" && n > len(data)/2 {
						continue
					}
					t.Fatalf("truncated to %d of %d bytes: no error", n, len(data))
				}
				if !errors.Is(err, ErrImageCorrupt) && !errors.Is(err, ErrImageFormat) {
					t.Fatalf("truncated to %d bytes: %v", n, err)
				}
			}
		})
	}
}

func TestDecodeImageColor(t *testing.T) {
	rgba := image.NewNRGBA(image.Rect(0, 0, 4, 3))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(i * 19)
	}
	for i := 3; i < len(rgba.Pix); i += 4 {
		rgba.Pix[i] = 255
	}
	got, err := DecodeImage(encodePNG(t, rgba), DefaultImageLimits)
	if err != nil {
		t.Fatal(err)
	}
	for y := range 3 {
		for x := range 4 {
			want := color.GrayModel.Convert(rgba.At(x, y)).(color.Gray)
			if g := got.GrayAt(x, y); g != want {
				t.Errorf("(%d,%d) = %v, want %v", x, y, g, want)
			}
		}
	}

	// A color JPEG decodes to YCbCr.
	big := image.NewRGBA(image.Rect(0, 0, 32, 24))
	for i := range big.Pix {
		big.Pix[i] = uint8(i * 7)
	}
	data := encodeJPEG(t, big)
	ycc, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ycc.(*image.YCbCr); !ok {
		t.Fatalf("color JPEG decodes to %T", ycc)
	}
	got, err = DecodeImage(data, DefaultImageLimits)
	if err != nil {
		t.Fatal(err)
	}
	for y := range 24 {
		for x := range 32 {
			want := color.GrayModel.Convert(ycc.At(x, y)).(color.Gray).Y
			if got.GrayAt(x, y).Y != want {
				t.Fatalf("(%d,%d) = %d, GrayModel gives %d", x, y, got.GrayAt(x, y).Y, want)
			}
		}
	}

	// 16-bit gray keeps its high byte.
	g16 := image.NewGray16(image.Rect(0, 0, 2, 1))
	g16.SetGray16(0, 0, color.Gray16{0x12ff})
	g16.SetGray16(1, 0, color.Gray16{0xff00})
	got, err = DecodeImage(encodePNG(t, g16), DefaultImageLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Pix, []byte{0x12, 0xff}) {
		t.Errorf("16-bit: got %x", got.Pix)
	}
}

func TestPGM(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []byte // 8-bit pixels, row-major; nil = error
		w, h int
	}{
		{"P5 8-bit", "P5\n3 2\n255\n\x00\x01\x02\x7f\x80\xff", []byte{0, 1, 2, 127, 128, 255}, 3, 2},
		{"P5 comments", "P5 # made by hand\n#another\n3\t2 #dims\n255#c\n\x00\x01\x02\x03\x04\x05", []byte{0, 1, 2, 3, 4, 5}, 3, 2},
		{"P5 comment before whitespace after magic", "P5#c\n1 1 255\n\x07", []byte{7}, 1, 1},
		{"P5 CR line ends", "P5\r1\r1\r255\r\x07", []byte{7}, 1, 1},
		{"P5 maxval 15 scaled", "P5 2 1 15\n\x00\x0f", []byte{0, 255}, 2, 1},
		{"P5 maxval 1", "P5 2 1 1\n\x00\x01", []byte{0, 255}, 2, 1},
		{"P5 16-bit", "P5 3 1 65535\n\x00\x00\x12\x34\xff\xff", []byte{0, 0x12, 0xff}, 3, 1},
		{"P5 maxval 1000", "P5 2 1 1000\n\x03\xe8\x01\xf4", []byte{255, 128}, 2, 1},
		{"P5 trailing data ignored", "P5 1 1 255\n\x07extra", []byte{7}, 1, 1},
		{"P2", "P2\n# plain\n3 2\n255\n0 1 2\n 3\t4\n5", []byte{0, 1, 2, 3, 4, 5}, 3, 2},
		{"P2 scaled", "P2 2 1 3 0 3\n", []byte{0, 255}, 2, 1},
		{"P2 16-bit", "P2 2 1 65535 4660 65535", []byte{0x12, 0xff}, 2, 1},
		{"P5 sample above maxval", "P5 2 1 15\n\x00\x10", nil, 0, 0},
		{"P5 16-bit sample above maxval", "P5 1 1 1000\n\x03\xe9", nil, 0, 0},
		{"P2 sample above maxval", "P2 2 1 15 0 16", nil, 0, 0},
		{"P2 garbage sample", "P2 2 1 15 0 x", nil, 0, 0},
		{"P2 sample glued", "P2 2 1 15 0 1x", nil, 0, 0},
		{"P2 missing sample", "P2 2 1 15 0 ", nil, 0, 0},
		{"P5 truncated", "P5 2 2 255\n\x00\x01\x02", nil, 0, 0},
		{"P5 16-bit truncated", "P5 2 1 65535\n\x00\x01\x02", nil, 0, 0},
		{"maxval 0", "P5 1 1 0\n\x00", nil, 0, 0},
		{"maxval 65536", "P5 1 1 65536\n\x00\x00", nil, 0, 0},
		{"width 0", "P5 0 1 255\n", nil, 0, 0},
		{"negative width", "P5 -1 1 255\n\x00", nil, 0, 0},
		{"no space after magic", "P51 1 255\n\x00", nil, 0, 0},
		{"no whitespace after maxval", "P5 1 1 255\x00", nil, 0, 0},
		{"header ends early", "P5 1 1", nil, 0, 0},
		{"enormous number", "P5 99999999999999999999 1 255\n\x00", nil, 0, 0},
		{"comment to EOF", "P5 1 1 # no end", nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeImage([]byte(tt.in), DefaultImageLimits)
			if tt.want == nil {
				if !errors.Is(err, ErrImageCorrupt) && !errors.Is(err, ErrImageFormat) {
					t.Fatalf("err = %v, want ErrImageCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Rect != image.Rect(0, 0, tt.w, tt.h) || !bytes.Equal(got.Pix, tt.want) {
				t.Errorf("got %v %v, want %dx%d %v", got.Rect, got.Pix, tt.w, tt.h, tt.want)
			}
			// The registered decoder reads from any io.Reader.
			img, format, err := image.Decode(strings.NewReader(tt.in))
			if err != nil || format != "pgm" {
				t.Fatalf("image.Decode: %v, format %q", err, format)
			}
			if !bytes.Equal(toGray(img).Pix, tt.want) {
				t.Errorf("image.Decode pixels %v", toGray(img).Pix)
			}
		})
	}
}

func TestEncodePGM(t *testing.T) {
	full := gradient(37, 11)
	sub := full.SubImage(image.Rect(5, 2, 30, 9)).(*image.Gray)
	for name, img := range map[string]*image.Gray{"full": full, "subimage": sub} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := EncodePGM(&b, img); err != nil {
				t.Fatal(err)
			}
			if ContentType(b.Bytes()) != ContentTypePGM {
				t.Fatalf("ContentType = %q", ContentType(b.Bytes()))
			}
			got, err := DecodeImage(b.Bytes(), DefaultImageLimits)
			if err != nil {
				t.Fatal(err)
			}
			w, h := img.Rect.Dx(), img.Rect.Dy()
			if got.Rect != image.Rect(0, 0, w, h) {
				t.Fatalf("bounds %v", got.Rect)
			}
			for y := range h {
				for x := range w {
					if got.GrayAt(x, y) != img.GrayAt(img.Rect.Min.X+x, img.Rect.Min.Y+y) {
						t.Fatalf("pixel (%d,%d) differs", x, y)
					}
				}
			}
		})
	}
	if err := EncodePGM(&bytes.Buffer{}, image.NewGray(image.Rect(0, 0, 0, 3))); err == nil {
		t.Error("empty image: no error")
	}
}

func FuzzDecodeImage(f *testing.F) {
	img := gradient(12, 9)
	f.Add(encodePNG(f, img))
	f.Add(encodeJPEG(f, img))
	f.Add(encodePGM(f, img))
	f.Add([]byte("P2\n# c\n3 2\n15\n0 1 2\n3 4 15\n"))
	f.Add([]byte("P5 2 1 65535\n\x00\x01\x02\x03"))
	f.Add(hugePNG(100000, 100000))
	rgba := image.NewRGBA(image.Rect(0, 0, 5, 4))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(i * 31)
	}
	f.Add(encodePNG(f, rgba))
	f.Add(encodeJPEG(f, rgba))
	lim := ImageLimits{MaxWidth: 1024, MaxHeight: 1024, MaxPixels: 1 << 18, MaxBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeImage(data, lim)
		if err != nil {
			if !errors.Is(err, ErrImageCorrupt) && !errors.Is(err, ErrImageFormat) && !errors.Is(err, ErrImageTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		w, h := got.Rect.Dx(), got.Rect.Dy()
		if got.Rect.Min != (image.Point{}) || w < 1 || h < 1 || w > lim.MaxWidth || h > lim.MaxHeight || w*h > lim.MaxPixels {
			t.Fatalf("bounds %v outside the limits", got.Rect)
		}
		if len(got.Pix) < (h-1)*got.Stride+w {
			t.Fatalf("%d pixels for %v", len(got.Pix), got.Rect)
		}
		// What decodes must survive a PGM round trip unchanged.
		var b bytes.Buffer
		if err := EncodePGM(&b, got); err != nil {
			t.Fatal(err)
		}
		again, err := DecodeImage(b.Bytes(), ImageLimits{MaxBytes: b.Len(), MaxWidth: w, MaxHeight: h, MaxPixels: w * h})
		if err != nil {
			t.Fatal(err)
		}
		for y := range h {
			if !bytes.Equal(again.Pix[y*again.Stride:y*again.Stride+w], got.Pix[y*got.Stride:y*got.Stride+w]) {
				t.Fatalf("row %d differs after a PGM round trip", y)
			}
		}
	})
}
