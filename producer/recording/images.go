package recording

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/muonml/muon/message"
)

type imageFile struct {
	path  string
	label string
}

type imageSource struct {
	root   string
	device string
	files  []imageFile
	next   int
	start  time.Time
	period time.Duration
	closed bool
}

func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg", ".pgm":
		return true
	}
	return false
}

// openImages lists the images under root; the files are read one by one in
// Next.
func openImages(root string, opt Options) (*imageSource, error) {
	if err := opt.needClock(root, "an image folder has no timestamps"); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	s := &imageSource{root: root, device: opt.Device, start: opt.Start, period: opt.Period}
	if s.device == "" {
		s.device = filepath.Base(abs)
	}
	// WalkDir does not follow a symbolic link given as its root.
	walkRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	err = filepath.WalkDir(walkRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != walkRoot && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isImageName(name) {
			return nil
		}
		for _, p := range opt.Exclude {
			if ok, _ := filepath.Match(p, name); ok { // patterns checked by Options.validate
				return nil
			}
		}
		rel, err := filepath.Rel(walkRoot, path)
		if err != nil {
			return err
		}
		f := imageFile{path: path}
		if top, _, nested := strings.Cut(filepath.ToSlash(rel), "/"); nested {
			f.label = top
		}
		s.files = append(s.files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	if len(s.files) == 0 {
		return nil, fmt.Errorf("%w: %s: no .png, .jpg, .jpeg or .pgm files (after Exclude %q)", ErrFormat, root, opt.Exclude)
	}
	return s, nil
}

// Labels are the folder's top-level sub-folders that hold images: its
// classes, sorted.
func (s *imageSource) Labels() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range s.files {
		if f.label != "" && !seen[f.label] {
			seen[f.label] = true
			out = append(out, f.label)
		}
	}
	slices.Sort(out)
	return out
}

// Files is the number of image files the folder holds.
func (s *imageSource) Files() int { return len(s.files) }

func (s *imageSource) Next() (Message, error) {
	if s.closed {
		return Message{}, ErrClosed
	}
	if s.next >= len(s.files) {
		return Message{}, io.EOF
	}
	i := s.next
	s.next++
	f := s.files[i]
	data, err := os.ReadFile(f.path)
	if err != nil {
		return Message{}, fmt.Errorf("recording: %w", err)
	}
	ct := message.ContentType(data)
	if ct == "" {
		return Message{}, fmt.Errorf("%w: %s: not a PNG, JPEG or PGM image (it starts with %q)", ErrFormat, f.path, data[:min(len(data), 8)])
	}
	t, ok := tick(s.start, int64(i), s.period)
	if !ok {
		return Message{}, fmt.Errorf("%w: %s: image %d is beyond the year 9999", ErrFormat, f.path, i+1)
	}
	m := Message{
		Key:     []byte(s.device),
		Value:   data,
		Time:    t,
		Headers: []Header{{Key: message.HeaderDevice, Value: []byte(s.device)}},
	}
	if f.label != "" {
		m.Headers = append(m.Headers, Header{Key: message.HeaderLabel, Value: []byte(f.label)})
	}
	m.Headers = append(m.Headers, Header{Key: message.HeaderContentType, Value: []byte(ct)})
	return m, nil
}

func (s *imageSource) Close() error {
	s.closed = true
	return nil
}
