package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/muonml/muon/internal/atomicfile"
)

// Write creates the folder, replaces an existing file, and leaves no
// temporary file behind.
func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "f.json")
	for _, want := range []string{"one", "two"} {
		if err := atomicfile.Write(path, []byte(want)); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != want {
			t.Fatalf("read %q (%v), want %q", got, err, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("folder holds %v (%v), want only f.json", entries, err)
	}
}
