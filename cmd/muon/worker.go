package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/apache/beam/sdks/v2/go/container/tools"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/util/grpcx"
)

// isBoot reports whether the arguments are those a runner's PROCESS
// environment starts an SDK worker's boot program with
// (--id=… --provision_endpoint=…).
func isBoot(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "--provision_endpoint=") || strings.HasPrefix(a, "-provision_endpoint=") {
			return true
		}
	}
	return false
}

// boot is the worker's boot program, in the muon binary: a Flink
// TaskManager's PROCESS environment starts `muon --id=… --provision_endpoint=…`.
// It reads the job's pipeline options and endpoints from the runner's
// provision service, then runs the Beam Go SDK harness in this process, as
// the SDK's container boot program does (which would fetch the staged
// worker binary and run it: muon is that binary already, so the workers'
// muon must be the submitter's version).
func boot(args []string) error {
	fs := flag.NewFlagSet("muon (worker boot)", flag.ContinueOnError)
	id := fs.String("id", "", "worker id")
	provision := fs.String("provision_endpoint", "", "provision service")
	logging := fs.String("logging_endpoint", "", "logging service")
	fs.String("artifact_endpoint", "", "artifact service (unused: muon is the worker binary)")
	control := fs.String("control_endpoint", "", "control service")
	semi := fs.String("semi_persist_dir", os.TempDir(), "semi-persistent directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == "" {
		return fmt.Errorf("muon worker boot: no --id")
	}
	ctx := grpcx.WriteWorkerID(context.Background(), *id)
	info, err := tools.ProvisionInfo(ctx, *provision)
	if err != nil {
		return fmt.Errorf("muon worker boot: provision info from %s: %w", *provision, err)
	}
	if u := info.GetLoggingEndpoint().GetUrl(); u != "" {
		*logging = u
	}
	if u := info.GetControlEndpoint().GetUrl(); u != "" {
		*control = u
	}
	if *logging == "" || *control == "" {
		return fmt.Errorf("muon worker boot: the runner gave no logging or control endpoint")
	}
	options, err := tools.ProtoToJSON(info.GetPipelineOptions())
	if err != nil {
		return fmt.Errorf("muon worker boot: pipeline options: %w", err)
	}
	if u := info.GetStatusEndpoint().GetUrl(); u != "" {
		os.Setenv("STATUS_ENDPOINT", u)
	}
	if len(info.GetRunnerCapabilities()) > 0 {
		os.Setenv("RUNNER_CAPABILITIES", strings.Join(info.GetRunnerCapabilities(), " "))
	}
	// The harness reads these flags of the program's flag set in worker
	// mode (beam.Init runs it, and exits when it ends).
	for k, v := range map[string]string{"worker": "true", "id": *id, "logging_endpoint": *logging, "control_endpoint": *control,
		"semi_persist_dir": *semi, "options": options} {
		if err := flag.CommandLine.Set(k, v); err != nil {
			return fmt.Errorf("muon worker boot: %s: %w", k, err)
		}
	}
	beam.Init()
	return nil
}
