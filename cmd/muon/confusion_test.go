package main

import (
	"strings"
	"testing"
)

// Every class's row is printed, beyond the 4 classes the summary used to
// stop at, headed by the labels.
func TestPrintConfusionOfTenClasses(t *testing.T) {
	c := make([][]int, 10)
	labels := make([]string, 10)
	for i := range c {
		c[i] = make([]int, 10)
		c[i][i] = 100 + i
		labels[i] = string(rune('a' + i))
	}
	c[3][8] = 7
	var b strings.Builder
	printConfusion(&b, c, labels)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 12 {
		t.Fatalf("%d lines, want a title, a header and 10 rows:\n%s", len(lines), b.String())
	}
	if f := strings.Fields(lines[1]); len(f) != 10 || f[0] != "a" || f[9] != "j" {
		t.Errorf("header %q, want the 10 labels", lines[1])
	}
	if f := strings.Fields(lines[5]); len(f) != 11 || f[0] != "d" || f[4] != "103" || f[9] != "7" {
		t.Errorf("row of class d %q, want its label, 103 on the diagonal and 7 predicted as i", lines[5])
	}
	var big strings.Builder
	printConfusion(&big, make([][]int, 30), nil)
	if !strings.Contains(big.String(), "30 classes: in summary.json") {
		t.Errorf("30 classes: %q", big.String())
	}
}
