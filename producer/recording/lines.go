package recording

import (
	"bufio"
	"bytes"
	"io"
)

// lineReader returns the lines of a text file of any line length, without
// their line end (LF or CRLF) and without a leading UTF-8 byte order mark.
type lineReader struct {
	r    *bufio.Reader
	n    int // number of the line last returned, from 1
	buf  []byte
	done bool
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line, valid until the following call, or io.EOF.
func (l *lineReader) next() ([]byte, error) {
	if l.done {
		return nil, io.EOF
	}
	l.buf = l.buf[:0]
	for {
		chunk, err := l.r.ReadSlice('\n')
		l.buf = append(l.buf, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			l.done = true
			if len(l.buf) == 0 {
				return nil, io.EOF
			}
		} else if err != nil {
			return nil, err
		}
		l.n++
		line := bytes.TrimSuffix(l.buf, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if l.n == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		return line, nil
	}
}
