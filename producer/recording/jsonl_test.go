package recording

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestJSONLReplaysLinesAsTheyAre(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "capture.jsonl")
	body := "{\"device\":\"g1\",\"ts\":\"2024-05-01T00:00:00Z\",\"values\":{\"x\":1}}\n\nnot json\r\n{\"values\":{\"x\":2}}\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	src, err := Open(path, Options{Start: start, Period: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	want := []struct {
		key, value string
		at         time.Time
	}{
		{"g1", `{"device":"g1","ts":"2024-05-01T00:00:00Z","values":{"x":1}}`, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{"capture", "not json", start.Add(time.Second)},
		{"capture", `{"values":{"x":2}}`, start.Add(2 * time.Second)},
	}
	for i, w := range want {
		m, err := src.Next()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(m.Key) != w.key || string(m.Value) != w.value || !m.Time.Equal(w.at) {
			t.Errorf("message %d = {%s %s %s}, want {%s %s %s}", i, m.Key, m.Value, m.Time, w.key, w.value, w.at)
		}
	}
	if _, err := src.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last line: %v, want io.EOF", err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrOptions) {
		t.Errorf("without a clock: %v, want ErrOptions", err)
	}
}
