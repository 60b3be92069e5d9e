package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/muonml/muon/configs"
	"github.com/robfig/cron/v3"
	bolt "go.etcd.io/bbolt"
)

// Overlap policies: what a tick does while the schedule's previous run is
// queued or running.
const (
	OverlapSkip      = "skip"       // the tick is skipped (counted)
	OverlapBufferOne = "buffer-one" // one tick waits; later ones are skipped
	OverlapAllow     = "allow"      // the tick's run is queued anyway
)

// Defaults of a schedule.
const (
	DefaultCatchUp = time.Hour
	DefaultBackoff = time.Minute
	// MaxBackfill is the most ticks one backfill makes.
	MaxBackfill = 1000
)

// Schedule runs a spec at the times of a cron expression.
type Schedule struct {
	// Name names the schedule: lowercase letters, digits and dashes.
	Name string `json:"name"`
	// Cron is a standard five-field cron expression (or a descriptor such
	// as @hourly), read in TZ (an IANA zone, default UTC).
	Cron string `json:"cron"`
	TZ   string `json:"tz,omitempty"`
	// Spec and Set are the job, as a submission's.
	Spec string   `json:"spec"`
	Set  []string `json:"set,omitempty"`
	// Overlap is skip (default), buffer-one or allow.
	Overlap string `json:"overlap,omitempty"`
	// Retries is how many times a failed run is tried again, Backoff the
	// wait before the first retry, doubled for each next.
	Retries int      `json:"retries,omitempty"`
	Backoff Duration `json:"backoff,omitempty"`
	// CatchUp is how far back, after downtime, missed ticks still run;
	// older ones are skipped (counted). Default DefaultCatchUp.
	CatchUp Duration `json:"catch_up,omitempty"`
	// Window, for a train job reading source.archive, has each run read
	// the archive's partitions in [tick − Window, tick): its source's
	// archive_from and archive_to are set from the tick.
	Window Duration `json:"window,omitempty"`
	Paused bool     `json:"paused,omitempty"`

	Created time.Time `json:"created"`
	// Last is the last tick handled (run, skipped or buffered).
	Last time.Time `json:"last_tick,omitzero"`
	// Buffered is a tick waiting for the previous run (buffer-one).
	Buffered time.Time `json:"buffered_tick,omitzero"`
	// LastRun is the newest run's id; Skipped counts skipped ticks.
	LastRun string `json:"last_run,omitempty"`
	Skipped int64  `json:"skipped,omitempty"`
	// Retry is when the failed LastRun is tried again (attempt Attempt).
	Retry   time.Time `json:"retry_at,omitzero"`
	Attempt int       `json:"attempt,omitempty"`
	// Next is when it fires next (not stored: computed).
	Next time.Time `json:"next,omitzero"`
}

// Duration is a time.Duration written as text ("1h30m") in JSON.
type Duration time.Duration

// MarshalJSON writes d as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads text such as "90s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration such as \"90s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("duration %q: want a non-negative duration such as \"90s\"", s)
	}
	*d = Duration(v)
	return nil
}

var scheduleName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,40}$`)

// check validates a schedule and fills its defaults; it returns its cron
// schedule and zone.
func (sc *Schedule) check() (cron.Schedule, *time.Location, error) {
	if !scheduleName.MatchString(sc.Name) {
		return nil, nil, fmt.Errorf("name %q: lowercase letters, digits and dashes, up to 41", sc.Name)
	}
	loc := time.UTC
	if sc.TZ != "" {
		l, err := time.LoadLocation(sc.TZ)
		if err != nil {
			return nil, nil, fmt.Errorf("tz %q: %v", sc.TZ, err)
		}
		loc = l
	}
	cs, err := cron.ParseStandard(sc.Cron)
	if err != nil {
		return nil, nil, fmt.Errorf("cron %q: %v", sc.Cron, err)
	}
	switch sc.Overlap {
	case "":
		sc.Overlap = OverlapSkip
	case OverlapSkip, OverlapBufferOne, OverlapAllow:
	default:
		return nil, nil, fmt.Errorf("overlap %q: want skip, buffer-one or allow", sc.Overlap)
	}
	if sc.Retries < 0 || sc.Retries > 10 {
		return nil, nil, fmt.Errorf("retries %d: want 0 to 10", sc.Retries)
	}
	if sc.Window < 0 {
		return nil, nil, fmt.Errorf("window %s: want a positive duration, e.g. 24h", time.Duration(sc.Window))
	}
	if sc.Backoff == 0 {
		sc.Backoff = Duration(DefaultBackoff)
	}
	if sc.CatchUp == 0 {
		sc.CatchUp = Duration(DefaultCatchUp)
	}
	return cs, loc, nil
}

// ticks are the fire times of cs in (after, until], in loc, at most max.
func ticks(cs cron.Schedule, loc *time.Location, after, until time.Time, max int) []time.Time {
	var out []time.Time
	for t := cs.Next(after.In(loc)); !t.After(until) && len(out) < max; t = cs.Next(t) {
		out = append(out, t.UTC())
	}
	return out
}

// tickID is the run id of a schedule's tick: the same tick always makes
// the same id, so it never runs twice, even across a restart.
func tickID(name string, t time.Time) string {
	return "r-" + t.UTC().Format("20060102T150405.000000Z") + "-" + name
}

var schedulesBucket = []byte("schedules")

func (s *store) putSchedule(sc *Schedule) error {
	return s.db.Update(func(tx *bolt.Tx) error { return putScheduleTx(tx, sc) })
}

func putScheduleTx(tx *bolt.Tx, sc *Schedule) error {
	b, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	bk, err := tx.CreateBucketIfNotExists(schedulesBucket)
	if err != nil {
		return err
	}
	return bk.Put([]byte(sc.Name), b)
}

func (s *store) getSchedule(name string) (*Schedule, error) {
	var sc *Schedule
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		sc, err = getScheduleTx(tx, name)
		return err
	})
	return sc, err
}

// getScheduleTx returns schedule name as tx sees it (nil: none).
func getScheduleTx(tx *bolt.Tx, name string) (*Schedule, error) {
	bk := tx.Bucket(schedulesBucket)
	if bk == nil {
		return nil, nil
	}
	b := bk.Get([]byte(name))
	if b == nil {
		return nil, nil
	}
	sc := &Schedule{}
	return sc, json.Unmarshal(b, sc)
}

func (s *store) schedules() ([]*Schedule, error) {
	var out []*Schedule
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(schedulesBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(_, v []byte) error {
			sc := &Schedule{}
			if err := json.Unmarshal(v, sc); err != nil {
				return err
			}
			out = append(out, sc)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func (s *store) deleteSchedule(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(schedulesBucket)
		if bk == nil || bk.Get([]byte(name)) == nil {
			return errNoSchedule
		}
		return bk.Delete([]byte(name))
	})
}

var errNoSchedule = errors.New("no such schedule")

// AddSchedule checks a schedule (its cron, zone, policy and spec) and
// stores it; it fires from now on.
func (s *Server) AddSchedule(sc Schedule) (*Schedule, error) {
	if _, _, err := sc.check(); err != nil {
		return nil, err
	}
	if _, err := parse(sc.Name+".yaml", sc.Spec, sc.Set); err != nil {
		return nil, err
	}
	if sc.Window > 0 {
		// The window's partitions may not be written yet: the spec is
		// checked with it, the archive's contents when a tick runs.
		if _, err := configs.Parse(sc.Name+".yaml", []byte(sc.Spec), sc.runSet(s.now())...); err != nil {
			return nil, fmt.Errorf("window: %w", err)
		}
	}
	s.sched.Lock()
	defer s.sched.Unlock()
	if old, err := s.store.getSchedule(sc.Name); err != nil {
		return nil, err
	} else if old != nil {
		return nil, fmt.Errorf("schedule %s exists: remove it first", sc.Name)
	}
	sc.Created = s.now().UTC()
	sc.Last = sc.Created
	sc.Paused, sc.LastRun, sc.Skipped, sc.Buffered, sc.Retry, sc.Attempt = false, "", 0, time.Time{}, time.Time{}, 0
	if err := s.store.putSchedule(&sc); err != nil {
		return nil, err
	}
	return s.withNext(&sc), nil
}

// runSet is the overrides of the run of tick t: the schedule's, and its
// window's archive range.
func (sc *Schedule) runSet(t time.Time) []string {
	set := slices.Clone(sc.Set)
	if sc.Window > 0 {
		t = t.UTC()
		set = append(set, "source.archive_from="+t.Add(-time.Duration(sc.Window)).Format(time.RFC3339),
			"source.archive_to="+t.Format(time.RFC3339))
	}
	return set
}

// withNext sets sc.Next.
func (s *Server) withNext(sc *Schedule) *Schedule {
	if cs, loc, err := sc.check(); err == nil && !sc.Paused {
		after := sc.Last
		if after.Before(s.now().Add(-time.Duration(sc.CatchUp))) {
			after = s.now().Add(-time.Duration(sc.CatchUp))
		}
		sc.Next = cs.Next(after.In(loc)).UTC()
	}
	return sc
}

// active reports whether run id is queued or running.
func (s *Server) active(id string) bool {
	if id == "" {
		return false
	}
	r, err := s.store.get(id)
	return err == nil && r != nil && !r.Done()
}

// queueTick stores the queued run of a tick unless its id exists, and
// appends a new run's id to stored: the caller sends those to s.queue
// (sendAll) after it stored the schedule's LastRun and let go of s.sched,
// so that the run's end, which takes s.sched, finds it.
func (s *Server) queueTick(sc *Schedule, t time.Time, attempt int, stored *[]string) (string, error) {
	id := tickID(sc.Name, t)
	if attempt > 0 {
		id += fmt.Sprintf("-retry%d", attempt)
	}
	if r, err := s.store.get(id); err != nil {
		return id, err
	} else if r != nil {
		return id, nil
	}
	set := sc.runSet(t)
	r := &Run{ID: id, Name: sc.Name, Spec: sc.Spec, Set: set, State: Queued, Submitted: s.now().UTC(), Schedule: sc.Name, Tick: t.UTC()}
	sp, err := parse(sc.Name+".yaml", sc.Spec, set)
	if err != nil {
		// The tick's run fails where its history shows it, e.g. a window
		// whose archive partitions are missing.
		r.State, r.Error, r.Ended = Failed, err.Error(), s.now().UTC()
		if perr := s.store.put(r); perr != nil {
			return id, perr
		}
		return id, nil
	}
	r.Name, r.Job = sp.Name, sp.Job
	if err := s.store.put(r); err != nil {
		return id, err
	}
	*stored = append(*stored, id)
	return id, nil
}

// sendAll hands the runs *ids to the runner.
func (s *Server) sendAll(ids *[]string) {
	for _, id := range *ids {
		s.queue <- id
	}
}

// tick fires what is due of every schedule at s.now(): missed ticks
// within the catch-up window, the buffered tick once its predecessor
// ended, and retries whose time came. It returns the soonest next tick
// of the schedules not paused (zero: none).
func (s *Server) tick() (soonest time.Time, err error) {
	var queued []string
	defer s.sendAll(&queued)
	s.sched.Lock()
	defer s.sched.Unlock()
	scs, err := s.store.schedules()
	if err != nil {
		return soonest, err
	}
	now := s.now().UTC()
	defer func() {
		for _, sc := range scs {
			if s.withNext(sc); !sc.Paused && !sc.Next.IsZero() && (soonest.IsZero() || sc.Next.Before(soonest)) {
				soonest = sc.Next
			}
		}
	}()
	for _, sc := range scs {
		if sc.Paused {
			continue
		}
		cs, loc, err := sc.check()
		if err != nil {
			continue
		}
		changed := false
		// A failed run tried again.
		if !sc.Retry.IsZero() && !now.Before(sc.Retry) && !s.active(sc.LastRun) {
			if r, _ := s.store.get(sc.LastRun); r != nil {
				id, err := s.queueTick(sc, r.Tick, sc.Attempt, &queued)
				if err == nil {
					sc.LastRun, sc.Retry, changed = id, time.Time{}, true
				}
			}
		}
		// The buffered tick, once the run before it ended.
		if !sc.Buffered.IsZero() && !s.active(sc.LastRun) {
			id, err := s.queueTick(sc, sc.Buffered, 0, &queued)
			if err == nil {
				sc.LastRun, sc.Buffered, sc.Attempt, changed = id, time.Time{}, 0, true
			}
		}
		floor := now.Add(-time.Duration(sc.CatchUp))
		for _, t := range ticks(cs, loc, sc.Last, now, MaxBackfill) {
			sc.Last, changed = t, true
			if t.Before(floor) {
				sc.Skipped++ // missed beyond the catch-up window
				continue
			}
			if s.active(sc.LastRun) {
				switch sc.Overlap {
				case OverlapSkip:
					sc.Skipped++
					continue
				case OverlapBufferOne:
					if !sc.Buffered.IsZero() {
						sc.Skipped++
					}
					sc.Buffered = t
					continue
				}
			}
			id, err := s.queueTick(sc, t, 0, &queued)
			if err != nil {
				return soonest, err
			}
			sc.LastRun, sc.Attempt = id, 0
		}
		if changed {
			if err := s.store.putSchedule(sc); err != nil {
				return soonest, err
			}
		}
	}
	return soonest, nil
}

// retryIn is what a run's end means for its schedule, stored in tx with
// the run's end: a run that failed or was interrupted (the server stopped
// while it ran) is tried again as its schedule's retries say, after a
// backoff that doubles. The caller holds s.sched (or, in Open, nothing
// else runs yet).
func (s *Server) retryIn(tx *bolt.Tx, r *Run) error {
	if r.Schedule == "" || r.State != Failed && r.State != Interrupted {
		return nil
	}
	sc, err := getScheduleTx(tx, r.Schedule)
	if err != nil || sc == nil || sc.LastRun != r.ID || sc.Attempt >= sc.Retries {
		return err
	}
	sc.Attempt++
	sc.Retry = s.now().UTC().Add(time.Duration(sc.Backoff) << (sc.Attempt - 1))
	return putScheduleTx(tx, sc)
}

// Backfill makes the runs of a schedule's ticks in [from, to): with dryRun
// only lists them. Ticks whose runs exist are left alone, so the same
// backfill twice makes its runs once.
func (s *Server) Backfill(name string, from, to time.Time, dryRun bool) (ticksOut []time.Time, made []string, err error) {
	sc, err := s.store.getSchedule(name)
	if err != nil {
		return nil, nil, err
	}
	if sc == nil {
		return nil, nil, errNoSchedule
	}
	cs, loc, err := sc.check()
	if err != nil {
		return nil, nil, err
	}
	if !from.Before(to) {
		return nil, nil, fmt.Errorf("from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	all := ticks(cs, loc, from.Add(-time.Nanosecond), to.Add(-time.Nanosecond), MaxBackfill+1)
	if len(all) > MaxBackfill {
		return nil, nil, fmt.Errorf("more than %d ticks between %s and %s: backfill a shorter interval", MaxBackfill, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if dryRun {
		return all, nil, nil
	}
	defer s.sendAll(&made)
	s.sched.Lock()
	defer s.sched.Unlock()
	for _, t := range all {
		if _, err := s.queueTick(sc, t, 0, &made); err != nil {
			return all, made, err
		}
	}
	return all, made, nil
}
