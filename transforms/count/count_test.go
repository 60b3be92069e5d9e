package count

import "testing"

func TestMergeStats(t *testing.T) {
	a := DeviceStats{Device: "d", Records: 2, First: 10, Last: 20}
	b := DeviceStats{Device: "d", Records: 3, First: 5, Last: 15, Label: "walk"}
	want := DeviceStats{Device: "d", Records: 5, First: 5, Last: 20, Label: "walk"}
	if got := mergeStats(a, b); got != want {
		t.Errorf("mergeStats = %+v, want %+v", got, want)
	}
	if got := mergeStats(DeviceStats{}, b); got != b {
		t.Errorf("merging into an empty accumulator = %+v, want %+v", got, b)
	}
}

func TestLabelName(t *testing.T) {
	seen := map[string]int64{}
	if got := LabelName("walk", seen); got != "walk" {
		t.Errorf("LabelName(walk) = %q", got)
	}
	if got := LabelName("\x1b]0;t\x07", seen); got != `\x1b]0;t\a` {
		t.Errorf("an escape sequence became %q", got)
	}
	long := LabelName(string(make([]byte, 10_000)), seen)
	if len(long) > 300 {
		t.Errorf("a 10 KB label became a %d-byte metric name", len(long))
	}
	for i := range MaxLabels {
		seen[string(rune('a'+i%26))+string(rune('A'+i/26))] = 1
	}
	if got := LabelName("one more", seen); got != "…" {
		t.Errorf("label %d = %q, want …", MaxLabels+1, got)
	}
}
