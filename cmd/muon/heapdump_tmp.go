package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"
)

func init() {
	dir := os.Getenv("MUON_HEAPDUMP_DIR")
	if dir == "" {
		return
	}
	go func() {
		for i := 1; ; i++ {
			time.Sleep(30 * time.Second)
			runtime.GC()
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("heap-%03d.pprof", i)))
			if err != nil {
				return
			}
			_ = pprof.WriteHeapProfile(f)
			f.Close()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Fprintf(os.Stderr, "HEAPDUMP %d heap_inuse=%d MiB heap_objects=%d sys=%d MiB goroutines=%d\n", i, m.HeapInuse>>20, m.HeapObjects, m.Sys>>20, runtime.NumGoroutine())
		}
	}()
}
