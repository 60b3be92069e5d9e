package memlimit

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// cgroupTree writes a cgroup v2 hierarchy under a temporary root with the
// given memory.max per cgroup, and a /proc/self/cgroup naming leaf.
func cgroupTree(t *testing.T, leaf string, max map[string]string) (cgroupFile, root string) {
	t.Helper()
	root = t.TempDir()
	for dir, v := range max {
		d := filepath.Join(root, dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "memory.max"), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cgroupFile = filepath.Join(t.TempDir(), "cgroup")
	if err := os.WriteFile(cgroupFile, []byte("0::"+leaf+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cgroupFile, root
}

func TestCgroupSmallestOnThePath(t *testing.T) {
	file, root := cgroupTree(t, "/system.slice/muon.service", map[string]string{
		"/system.slice/muon.service": "max",
		"/system.slice":              "268435456",
		"/":                          "1073741824",
	})
	max, path, ok := Cgroup(file, root)
	if !ok || max != 268435456 || path != "/system.slice" {
		t.Fatalf("Cgroup = %d, %q, %v; want 268435456 from /system.slice", max, path, ok)
	}
}

func TestCgroupUnlimited(t *testing.T) {
	file, root := cgroupTree(t, "/user.slice", map[string]string{"/user.slice": "max"})
	if max, path, ok := Cgroup(file, root); ok {
		t.Fatalf("Cgroup = %d, %q, true; want no limit", max, path)
	}
	// cgroup v1 only: no "0::" line.
	v1 := filepath.Join(t.TempDir(), "cgroup")
	if err := os.WriteFile(v1, []byte("4:memory:/user.slice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := Cgroup(v1, root); ok {
		t.Fatal("Cgroup found a limit in a cgroup v1 file")
	}
	if _, _, ok := Cgroup(filepath.Join(root, "absent"), root); ok {
		t.Fatal("Cgroup found a limit without a cgroup file")
	}
}

func TestSetPrecedence(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	t.Setenv("GOMEMLIMIT", "")
	if l := Set(64 << 20); l.Bytes != 64<<20 || l.From != "spec" || debug.SetMemoryLimit(-1) != 64<<20 {
		t.Fatalf("Set(64 MiB) = %v, runtime limit %d", l, debug.SetMemoryLimit(-1))
	}
	if got := (Limit{Bytes: 64 << 20, From: "spec"}).String(); got != "64 MiB (spec)" {
		t.Fatalf("String = %q", got)
	}
	// GOMEMLIMIT wins: the runtime read it at start; here the variable is
	// set and the limit in force is whatever the runtime has.
	t.Setenv("GOMEMLIMIT", "100MiB")
	debug.SetMemoryLimit(100 << 20)
	if l := Set(64 << 20); l.From != "GOMEMLIMIT" || l.Bytes != 100<<20 {
		t.Fatalf("Set with GOMEMLIMIT = %v; want the environment's 100 MiB", l)
	}
}
