package layout

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/muonml/muon/"

// rule forbids packages under from (exactly from, if it ends in $) to
// depend, directly or not, on packages under any of to.
type rule struct {
	from string
	to   []string
	why  string
}

var rules = []rule{
	{"io/", []string{module + "transforms/", module + "jobs", module + "cmd/"}, "connectors know no stage and no job"},
	{"models/", []string{"github.com/apache/beam/"}, "numerics run without Beam (the predict API, the bench, devices)"},
	{"transforms/", []string{module + "jobs", module + "cmd/"}, "stages know no job"},
	{"records", []string{module + "io/", module + "transforms/", module + "jobs", module + "models", module + "runners", module + "configs", module + "message", module + "producer"}, "record types are the bottom of muon"},
	{"records$", []string{"github.com/apache/beam/"}, "producers use the record types: their Beam coders are in records/coders"},
	{"message", []string{module + "io/", module + "transforms/", module + "jobs", module + "models", module + "runners", module + "configs", module + "producer", "github.com/apache/beam/"}, "the message contract needs only the record types: producers import it"},
	{"runners", []string{module + "jobs", module + "transforms/", module + "cmd/"}, "runners launch any pipeline"},
	{"configs", []string{module + "jobs", module + "cmd/"}, "specs know no job"},
}

type pkg struct {
	ImportPath string
	Deps       []string
}

// violations lists what pkgs break rules, as "a → b (why)".
func violations(pkgs []pkg, rules []rule) []string {
	var out []string
	for _, p := range pkgs {
		rel, ok := strings.CutPrefix(p.ImportPath, module)
		if !ok {
			continue
		}
		for _, r := range rules {
			if exact, ok := strings.CutSuffix(r.from, "$"); ok && rel != exact || !ok && !strings.HasPrefix(rel, r.from) {
				continue
			}
			for _, d := range p.Deps {
				for _, to := range r.to {
					if strings.HasPrefix(d, to) {
						out = append(out, p.ImportPath+" → "+d+" ("+r.why+")")
					}
				}
			}
		}
	}
	return out
}

func TestLayering(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Deps", module+"...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; want all of muon's", len(pkgs))
	}
	for _, v := range violations(pkgs, rules) {
		t.Error(v)
	}
}

// The rules catch what they should: a connector importing a stage, a model
// importing Beam through another package.
func TestViolations(t *testing.T) {
	pkgs := []pkg{
		{module + "io/parquetio", []string{"fmt", module + "transforms/decode"}},
		{module + "models/compress", []string{module + "models", "github.com/apache/beam/sdks/v2/go/pkg/beam"}},
		{module + "transforms/infer", []string{module + "io/kafkaio", module + "models"}},
		{module + "jobs", []string{module + "transforms/infer"}},
	}
	got := violations(pkgs, rules)
	if len(got) != 2 || !strings.Contains(got[0], "io/parquetio → "+module+"transforms/decode") || !strings.Contains(got[1], "models/compress → github.com/apache/beam") {
		t.Errorf("violations = %q", got)
	}
}
