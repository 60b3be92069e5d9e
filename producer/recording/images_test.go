package recording

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/message"
)

func TestImagesMagneticTile(t *testing.T) {
	root := filepath.Join(datasets, "magnetic_tile")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("magnetic-tile dataset not found (see shared/datasets/README.md): %v", err)
	}
	const period = 50 * time.Millisecond
	src, err := Open(root, Options{Start: start, Period: period, Exclude: []string{"*.png"}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	msgs, err := drain(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 542 {
		t.Fatalf("%d images, want 542", len(msgs))
	}
	perLabel := map[string]int{}
	for i, m := range msgs {
		if string(m.Key) != "magnetic_tile" || header(m, message.HeaderDevice) != "magnetic_tile" {
			t.Fatalf("image %d: key %q", i, m.Key)
		}
		if ct := header(m, message.HeaderContentType); ct != message.ContentTypeJPEG {
			t.Fatalf("image %d: content-type %q", i, ct)
		}
		if !m.Time.Equal(start.Add(time.Duration(i) * period)) {
			t.Fatalf("image %d at %v", i, m.Time)
		}
		perLabel[header(m, message.HeaderLabel)]++
	}
	want := map[string]int{"MT_Blowhole": 115, "MT_Break": 85, "MT_Crack": 57, "MT_Fray": 32, "MT_Free": 150, "MT_Uneven": 103}
	for l, n := range want {
		if perLabel[l] != n {
			t.Errorf("%s: %d images, want %d", l, perLabel[l], n)
		}
	}
	if len(perLabel) != len(want) {
		t.Errorf("labels %v", perLabel)
	}
	// The value is the file, byte for byte, and decodes.
	data, err := os.ReadFile(filepath.Join(root, "MT_Blowhole", "Imgs", "exp1_num_108719.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msgs[0].Value, data) {
		t.Error("first image differs from MT_Blowhole/Imgs/exp1_num_108719.jpg")
	}
	if _, err := message.DecodeImage(msgs[0].Value, message.DefaultImageLimits); err != nil {
		t.Error(err)
	}

	all, err := Open(root, Options{Start: start, Period: period})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	if msgs, err := drain(t, all); err != nil || len(msgs) != 1084 {
		t.Errorf("without Exclude: %d images, %v; want 1084", len(msgs), err)
	}
}

func TestImagesFolder(t *testing.T) {
	var pngData bytes.Buffer
	if err := png.Encode(&pngData, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	jpegData := []byte("\xff\xd8\xff\xe0 not decoded by the reader")
	pgmData := []byte("P5\n1 1\n255\n\x07")
	mk := func(t *testing.T, files map[string][]byte) string {
		root := filepath.Join(t.TempDir(), "line-3")
		for name, data := range files {
			path := filepath.Join(root, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	clock := Options{Start: start, Period: time.Second}
	tests := []struct {
		name    string
		files   map[string][]byte
		opt     Options
		want    []string // "key label content-type +offset"
		wantErr error
		errText string
	}{
		{name: "labels from top-level folders", opt: clock, files: map[string][]byte{
			"root.png":          pngData.Bytes(),
			"ok/a.JPG":          jpegData,
			"ok/deep/b.pgm":     pgmData,
			"scratch/c.jpeg":    jpegData,
			"scratch/notes.txt": []byte("x"),
			".cache/d.png":      pngData.Bytes(),
			"ok/.e.png":         []byte("AppleDouble"),
		}, want: []string{
			"line-3 ok image/jpeg +0s",
			"line-3 ok image/x-portable-graymap +1s",
			"line-3  image/png +2s",
			"line-3 scratch image/jpeg +3s",
		}},
		{name: "exclude and device", opt: Options{Start: start, Period: time.Second, Device: "cam1", Exclude: []string{"*.png", "b.*"}}, files: map[string][]byte{
			"x/a.png": pngData.Bytes(),
			"x/b.jpg": jpegData,
			"x/c.jpg": jpegData,
		}, want: []string{"cam1 x image/jpeg +0s"}},
		{name: "not an image", opt: clock, files: map[string][]byte{"a/fake.png": []byte("hello")},
			wantErr: ErrFormat, errText: `fake.png: not a PNG, JPEG or PGM image (it starts with "hello")`},
		{name: "nothing left", opt: Options{Start: start, Period: time.Second, Exclude: []string{"*"}}, files: map[string][]byte{"a.png": pngData.Bytes()},
			wantErr: ErrFormat, errText: "no .png"},
		{name: "no Start", opt: Options{Period: time.Second}, files: map[string][]byte{"a.png": pngData.Bytes()},
			wantErr: ErrOptions, errText: "Options.Start"},
		{name: "bad pattern", opt: Options{Start: start, Period: time.Second, Exclude: []string{"[x"}}, files: map[string][]byte{"a.png": pngData.Bytes()},
			wantErr: ErrOptions, errText: `exclude pattern "[x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := Open(mk(t, tt.files), tt.opt)
			var msgs []Message
			if err == nil {
				msgs, err = drain(t, src)
				src.Close()
			}
			if tt.wantErr != nil || err != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.errText)
				}
				return
			}
			var got []string
			for _, m := range msgs {
				if header(m, message.HeaderDevice) != string(m.Key) {
					t.Errorf("device header %q, key %q", header(m, message.HeaderDevice), m.Key)
				}
				got = append(got, strings.Join([]string{string(m.Key), header(m, message.HeaderLabel), header(m, message.HeaderContentType), offset(m.Time, start)}, " "))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.parquet", "b.TS", "c.CSV", "noext"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("@data\n1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	clock := Options{Start: start, Period: time.Second}
	tests := []struct {
		name, path string
		opt        Options
		want       error
		text       string
	}{
		{"unsupported", filepath.Join(dir, "a.parquet"), clock, ErrUnsupported, "a.parquet: want a .ts, .csv or .jsonl file or a folder of images, or a format"},
		{"no extension", filepath.Join(dir, "noext"), clock, ErrUnsupported, "noext"},
		{"missing", filepath.Join(dir, "missing.ts"), clock, fs.ErrNotExist, "missing.ts"},
		{"upper-case .TS", filepath.Join(dir, "b.TS"), clock, nil, ""},
		{"upper-case .CSV", filepath.Join(dir, "c.CSV"), clock, nil, ""},
		{"negative period", filepath.Join(dir, "b.TS"), Options{Period: -time.Second}, ErrOptions, "negative"},
		{"start out of range", filepath.Join(dir, "b.TS"), Options{Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, ErrOptions, "0000–9999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := Open(tt.path, tt.opt)
			if !errors.Is(err, tt.want) || (err != nil && !strings.Contains(err.Error(), tt.text)) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.want, tt.text)
			}
			if err != nil {
				return
			}
			if _, err := src.Next(); err != nil {
				t.Fatal(err)
			}
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := src.Next(); !errors.Is(err, ErrClosed) {
				t.Fatalf("Next after Close: %v", err)
			}
		})
	}
}
