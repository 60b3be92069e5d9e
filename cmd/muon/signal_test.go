package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// asMuon makes the test binary run muon with the arguments in this
// variable (separated by newlines), for tests that need a process of its
// own: signals end it.
const asMuon = "MUON_TEST_RUN_AS_MUON"

func TestMain(m *testing.M) {
	if args := os.Getenv(asMuon); args != "" {
		os.Exit(run(strings.Split(args, "\n"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// A bounded job interrupted with SIGINT says what it left undone and exits
// 130, instead of vanishing without a word (issue 15 item 14).
func TestBoundedJobInterrupted(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "slow.csv")
	var b strings.Builder
	b.WriteString("device,temp\n")
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "m%d,%d\n", i%3, i)
	}
	if err := os.WriteFile(csv, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "slow.yaml")
	body := fmt.Sprintf("name: slow\nsource: {topics: [slow], format: sensor}\noutput: {dir: %s}\nreplay: [{path: %s, rate: 100}]\n", filepath.Join(dir, "out"), csv)
	if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), asMuon+"=run\n--config\n"+spec)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stderr)
	var said []string
	for lines.Scan() {
		said = append(said, lines.Text())
		if strings.Contains(lines.Text(), "embedded Kafka broker") {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		said = append(said, lines.Text())
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Errorf("exit %v, want status 130", err)
	}
	all := strings.Join(said, "\n")
	if !strings.Contains(all, `job "slow" stopped after`) || !strings.Contains(all, "no summary was written") {
		t.Errorf("stderr does not say the job stopped:\n%s", all)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "summary.json")); err == nil {
		t.Error("an interrupted job wrote a summary")
	}
}
