package recording_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/muonml/muon/producer/recording"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "recording")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "press.csv")
	csv := "timestamp,temp,vib,label\n" +
		"2024-05-01 12:00:00,71.5,0.031,ok\n" +
		"2024-05-01 12:00:05,NA,0.029,ok\n"
	if err := os.WriteFile(path, []byte(csv), 0o644); err != nil {
		panic(err)
	}

	// Replay as if the recording started now (here: a fixed time).
	src, err := recording.Open(path, recording.Options{Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		panic(err)
	}
	defer src.Close()
	for {
		m, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("key=%s time=%s value=%s\n", m.Key, m.Time.Format(time.RFC3339), m.Value)
	}
	// Output:
	// key=press time=2025-01-01T00:00:00Z value={"device":"press","ts":"2025-01-01T00:00:00.000Z","values":{"temp":71.5,"vib":0.031},"label":"ok"}
	// key=press time=2025-01-01T00:00:05Z value={"device":"press","ts":"2025-01-01T00:00:05.000Z","values":{"vib":0.029},"label":"ok"}
}
