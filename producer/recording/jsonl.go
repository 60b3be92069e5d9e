package recording

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
)

// jsonlSource replays captured messages: one message value per line, sent
// as it is, malformed or not. This is how a capture of what devices sent is
// replayed, and how a job's dead-letter path is exercised on purpose.
type jsonlSource struct {
	path  string
	file  *os.File
	lines *lineReader
	opt   Options
	n     int64
	skips Skips
}

// Skips counts the empty lines.
func (s *jsonlSource) Skips() Skips { return s.skips }

func openJSONL(path string, opt Options) (*jsonlSource, error) {
	if err := opt.needClock(path, "captured messages carry no record timestamps"); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	return &jsonlSource{path: path, file: f, lines: newLineReader(f), opt: opt}, nil
}

// Next returns the next non-empty line as a message value. The key is the
// device the line names when it parses as a reading, else the file stem
// (or Options.Device); the time is the reading's ts when it has one, else
// Start + n×Period.
func (s *jsonlSource) Next() (Message, error) {
	if s.lines == nil {
		return Message{}, ErrClosed
	}
	for {
		line, err := s.lines.next()
		if errors.Is(err, io.EOF) {
			return Message{}, io.EOF
		}
		if err != nil {
			return Message{}, fmt.Errorf("%w: %s:%d: %v", ErrFormat, s.path, s.lines.n, err)
		}
		if len(line) == 0 {
			s.skips.Empty++
			continue
		}
		at, ok := tick(s.opt.Start, s.n, s.opt.Period)
		if !ok {
			return Message{}, fmt.Errorf("%w: %s:%d: event time out of range", ErrFormat, s.path, s.lines.n)
		}
		s.n++
		value := append([]byte(nil), line...)
		key := s.opt.Device
		if key == "" {
			key = fileStem(s.path)
		}
		var r records.Reading
		if err := message.ParseReading(value, at, &r); err == nil {
			key, at = r.Device, r.Time
		}
		return Message{Key: []byte(key), Value: value, Time: at}, nil
	}
}

func (s *jsonlSource) Close() error {
	if s.lines == nil {
		return nil
	}
	s.lines = nil
	return s.file.Close()
}
