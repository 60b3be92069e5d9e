package recording

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
)

const datasets = "../../../shared/datasets"

var start = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// drain reads a source to the end, checking what every source promises:
// the key is the device, and a reading's value parses and agrees with the
// message time.
func drain(t testing.TB, src Source) ([]Message, error) {
	t.Helper()
	var msgs []Message
	for {
		m, err := src.Next()
		if err == io.EOF {
			return msgs, nil
		}
		if err != nil {
			return msgs, err
		}
		if ct := header(m, message.HeaderContentType); ct == "" {
			var r records.Reading
			if err := message.ParseReading(m.Value, time.Time{}, &r); err != nil {
				t.Fatalf("message %d does not parse: %v\n%s", len(msgs), err, m.Value)
			}
			if r.Device != string(m.Key) || !r.Time.Equal(m.Time) {
				t.Fatalf("message %d: key %q time %v, reading %q %v", len(msgs), m.Key, m.Time, r.Device, r.Time)
			}
		}
		msgs = append(msgs, m)
	}
}

func header(m Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// summary renders a reading message compactly for table tests:
// "device +offset [name=value ...] label", the offset from base.
func summary(t testing.TB, m Message, base time.Time) string {
	t.Helper()
	var r records.Reading
	if err := message.ParseReading(m.Value, time.Time{}, &r); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s [", r.Device, offset(r.Time, base))
	for i, v := range r.Values {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", v.Name, v.Value)
	}
	b.WriteByte(']')
	if r.Label != "" {
		b.WriteString(" " + r.Label)
	}
	return b.String()
}

func offset(t, base time.Time) string {
	if base.IsZero() {
		return t.UTC().Format(time.RFC3339Nano)
	}
	if d := t.Sub(base); d < 0 {
		return d.String()
	}
	return "+" + t.Sub(base).String()
}

// writeFile writes content to name in a fresh temporary directory.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type formatCase struct {
	name    string
	file    string // content
	opt     Options
	want    []string // summaries, offsets from opt.Start (absolute if zero)
	wantErr error    // from Open or Next
	errText string   // part of the error message
}

// runFormatCases opens each file under the given name and compares.
func runFormatCases(t *testing.T, fileName string, tests []formatCase) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, fileName, tt.file)
			src, err := Open(path, tt.opt)
			var msgs []Message
			if err == nil {
				msgs, err = drain(t, src)
				if cerr := src.Close(); cerr != nil {
					t.Fatal(cerr)
				}
			}
			if tt.wantErr != nil || err != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("error %q does not contain %q", err, tt.errText)
				}
				return
			}
			var got []string
			for _, m := range msgs {
				got = append(got, summary(t, m, tt.opt.Start))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
