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
