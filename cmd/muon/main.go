package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/internal/memlimit"
)

// command is one muon subcommand.
type command struct {
	name  string
	usage string // the synopsis after "muon "
	short string // one line for muon help
	long  string // paragraph(s) for muon help <command>
	flags func(fs *flag.FlagSet, out *streams) func(args []string) error
}

// streams are where a command writes: its result to stdout, progress and
// diagnostics to stderr.
type streams struct {
	stdout, stderr io.Writer
}

func commands() []*command {
	return []*command{runCmd(), produceCmd(), brokerCmd(), modelsCmd(), predictCmd(), serveCmd(), jobsCmd(), scheduleCmd(), versionCmd()}
}

// errUsage marks errors after which the command's usage is worth printing.
var errUsage = errors.New("usage")

func main() {
	// A GOMEMLIMIT, else the cgroup's memory.max less a tenth (a
	// container's or a systemd unit's budget); a job's edge.memory_limit
	// may set it again.
	memlimit.Set(0)
	if isBoot(os.Args[1:]) {
		// A runner's PROCESS environment started this binary as an SDK
		// worker's boot program.
		if err := boot(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if isWorker(os.Args[1:]) {
		// A runner started this binary as a Beam SDK worker.
		flag.Parse()
		beam.Init()
		return
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// isWorker reports whether the arguments are a Beam worker invocation.
func isWorker(args []string) bool {
	for _, a := range args {
		if a == "--worker" || a == "-worker" || strings.HasPrefix(a, "--worker=") || strings.HasPrefix(a, "-worker=") {
			return true
		}
	}
	return false
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c := find(args[1]); c != nil {
				commandHelp(stdout, c)
				return 0
			}
			fmt.Fprintf(stderr, "muon: no command %q\n\n", args[1])
			usage(stderr)
			return 2
		}
		usage(stdout)
		return 0
	case "-v", "--version":
		name = "version"
	}
	c := find(name)
	if c == nil {
		fmt.Fprintf(stderr, "muon: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	fs := flag.NewFlagSet("muon "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { commandHelp(stderr, c) }
	exec := c.flags(fs, &streams{stdout: stdout, stderr: stderr})
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := exec(fs.Args()); err != nil {
		fmt.Fprintf(stderr, "muon %s: %v\n", c.name, err)
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "run 'muon help %s' for usage\n", c.name)
			return 2
		}
		return 1
	}
	return 0
}

func find(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, `muon: a dataflow engine for machine learning on streams.

Usage:
  muon <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.short)
	}
	fmt.Fprint(w, `
Run 'muon help <command>' or 'muon <command> --help' for a command's flags.
`)
}

func commandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: muon %s\n\n%s\n", c.usage, strings.TrimSpace(c.long))
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.flags(fs, &streams{stdout: io.Discard, stderr: io.Discard})
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// brokerList is a comma-separated, repeatable list of host:port.
type brokerList []string

func (l *brokerList) String() string { return strings.Join(*l, ",") }

func (l *brokerList) Set(v string) error {
	for _, b := range strings.Split(v, ",") {
		if b = strings.TrimSpace(b); b != "" {
			*l = append(*l, b)
		}
	}
	return nil
}
