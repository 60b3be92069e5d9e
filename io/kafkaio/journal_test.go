package kafkaio

import (
	"testing"
	"time"
)

func TestJournalDueCoversOnlyWhatTheWatermarkPassed(t *testing.T) {
	j := &journal{notes: map[string][]positionNote{}, committed: map[string]int64{}}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	j.note("t/0", 10, base)
	time.Sleep(noteCoalesce + 10*time.Millisecond)
	j.note("t/0", 20, base.Add(time.Second))
	time.Sleep(noteCoalesce + 10*time.Millisecond)
	j.note("t/0", 30, base.Add(2*time.Second))
	j.note("t/1", 5, base.Add(3*time.Second))
	if got := j.due(base); len(got) != 0 {
		t.Errorf("due at the first note's own time: %v, want nothing (its records are not all before it)", got)
	}
	got := j.due(base.Add(1500 * time.Millisecond))
	if len(got) != 1 || got["t/0"].Offset != 20 || got["t/0"].Read != 30 {
		t.Errorf("due after the second note: %v, want t/0 at 20, read to 30", got)
	}
	j.done(got)
	// A retried bundle notes an offset again with a later time: the note
	// then waits for the later time.
	j.note("t/0", 30, base.Add(5*time.Second))
	if got := j.due(base.Add(4 * time.Second)); len(got) != 1 || got["t/1"].Offset != 5 {
		t.Errorf("due at +4s: %v, want only t/1 at 5", got)
	}
	if got := j.due(base.Add(6 * time.Second)); got["t/0"].Offset != 30 {
		t.Errorf("due at +6s: %v, want t/0 at 30", got)
	}
	if _, ok := j.latest(); ok {
		t.Errorf("notes left after everything was due")
	}
}
