package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// beamVersion is the Beam Go SDK muon is built with; it must match the Flink
// job server's Beam version.
func beamVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/apache/beam/sdks/v2" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func muonVersion() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}

func versionCmd() *command {
	return &command{
		name:  "version",
		usage: "version",
		short: "print muon's version and the versions it is built with",
		long: `Prints the muon version, the Apache Beam Go SDK version (the Flink job
server must run the same Beam version), and the Go version.`,
		flags: func(fs *flag.FlagSet, out *streams) func([]string) error {
			return func(args []string) error {
				if len(args) > 0 {
					return fmt.Errorf("%w: version takes no arguments", errUsage)
				}
				fmt.Fprintf(out.stdout, "muon %s\nbeam go sdk %s\n%s %s/%s\n", muonVersion(), beamVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			}
		},
	}
}
