// Package memlimit sets the Go runtime's soft memory limit for a muon
// process from what the process is given: GOMEMLIMIT when set (the
// runtime reads it itself), else a spec's limit, else the memory limit of
// its cgroup (a container's or a systemd unit's MemoryMax), less a tenth
// for what the runtime does not count (the binary's pages, thread stacks).
//
// Without a limit the collector lets the heap grow to twice what is live
// and returns freed pages slowly: right for a server with memory to spare,
// wrong for a device whose budget the kernel enforces with the OOM killer.
package memlimit

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Limit is a soft memory limit set by Set, and where it came from.
type Limit struct {
	// Bytes is the limit; 0 means none was set.
	Bytes int64
	// From says where it came from: "GOMEMLIMIT", "spec", "cgroup <path>".
	From string
}

// String formats the limit for a log line: "64 MiB (spec)".
func (l Limit) String() string {
	if l.Bytes == 0 {
		return "none"
	}
	return fmt.Sprintf("%.0f MiB (%s)", float64(l.Bytes)/(1<<20), l.From)
}

// Set sets the runtime's soft memory limit: GOMEMLIMIT wins when the
// environment has it, then spec (bytes; 0: none given), then the
// cgroup's limit less a tenth. It returns the limit in force.
func Set(spec int64) Limit {
	if v := os.Getenv("GOMEMLIMIT"); v != "" && v != "off" {
		return Limit{Bytes: debug.SetMemoryLimit(-1), From: "GOMEMLIMIT"}
	}
	if spec > 0 {
		debug.SetMemoryLimit(spec)
		return Limit{Bytes: spec, From: "spec"}
	}
	if max, path, ok := Cgroup("/proc/self/cgroup", "/sys/fs/cgroup"); ok {
		l := max - max/10
		debug.SetMemoryLimit(l)
		return Limit{Bytes: l, From: "cgroup " + path}
	}
	return Limit{}
}

// Cgroup returns the smallest memory.max on the path from this process's
// cgroup (v2, read from the cgroup file, normally /proc/self/cgroup) up
// to the root mounted at root, and the cgroup that sets it; ok is false
// when no cgroup on the path limits memory or cgroup v2 is not mounted.
func Cgroup(cgroupFile, root string) (max int64, path string, ok bool) {
	f, err := os.Open(cgroupFile)
	if err != nil {
		return 0, "", false
	}
	defer f.Close()
	var rel string
	s := bufio.NewScanner(f)
	for s.Scan() {
		// cgroup v2: "0::/system.slice/muon.service"
		if p, found := strings.CutPrefix(s.Text(), "0::"); found {
			rel = p
		}
	}
	if rel == "" {
		return 0, "", false
	}
	max = math.MaxInt64
	for dir := filepath.Clean("/" + rel); ; dir = filepath.Dir(dir) {
		b, err := os.ReadFile(filepath.Join(root, dir, "memory.max"))
		if err == nil {
			v := strings.TrimSpace(string(b))
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 && n < max {
				max, path, ok = n, dir, true
			}
		}
		if dir == "/" {
			break
		}
	}
	return max, path, ok
}
