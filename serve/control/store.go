package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The states of a run.
const (
	Queued      = "queued"
	Running     = "running"
	Succeeded   = "succeeded"
	Failed      = "failed"
	Cancelled   = "cancelled"
	Interrupted = "interrupted"
)

// Run is a submitted job and what became of it.
type Run struct {
	ID string `json:"id"`
	// Name is the spec's name, Job its kind.
	Name string `json:"name"`
	Job  string `json:"job"`
	// Spec is the YAML as submitted, Set the --set-style overrides.
	Spec string   `json:"spec"`
	Set  []string `json:"set,omitempty"`
	// State is queued, running, succeeded, failed, cancelled or
	// interrupted (running when the server stopped).
	State     string    `json:"state"`
	Submitted time.Time `json:"submitted"`
	Started   time.Time `json:"started,omitzero"`
	Ended     time.Time `json:"ended,omitzero"`
	// Error says why a run failed.
	Error string `json:"error,omitempty"`
	// Summary is the job's summary (jobs.Summary as JSON) once it ran.
	Summary json.RawMessage `json:"summary,omitempty"`
	// CancelAsked is set when a cancel was asked of a running job.
	CancelAsked bool `json:"cancel_asked,omitempty"`
	// Schedule and Tick name the schedule and the time a scheduled run
	// is for.
	Schedule string    `json:"schedule,omitempty"`
	Tick     time.Time `json:"tick,omitzero"`
}

// Done reports whether the run has ended.
func (r *Run) Done() bool {
	switch r.State {
	case Succeeded, Failed, Cancelled, Interrupted:
		return true
	}
	return false
}

var runsBucket = []byte("runs")

// store keeps runs in a bbolt database: one file, transactions that
// survive a crash (bbolt syncs each commit), no server to run.
type store struct{ db *bolt.DB }

func openStore(dir string) (*store, error) {
	db, err := bolt.Open(filepath.Join(dir, "muon.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("state %s: another muon serve holds its database", dir)
		}
		return nil, fmt.Errorf("state %s: %w", dir, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(runsBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func (s *store) put(r *Run) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(runsBucket).Put([]byte(r.ID), b) })
}

func (s *store) get(id string) (*Run, error) {
	var r *Run
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(runsBucket).Get([]byte(id))
		if b == nil {
			return nil
		}
		r = &Run{}
		return json.Unmarshal(b, r)
	})
	return r, err
}

// update applies change to the stored run id and stores it, in one
// transaction; it returns the run as stored.
func (s *store) update(id string, change func(*Run) error) (*Run, error) {
	return s.updateThen(id, change, nil)
}

// updateThen is update with then (unless nil) run on the changed run in
// the same transaction, e.g. to store what a run's end means for its
// schedule: both are stored, or neither.
func (s *store) updateThen(id string, change func(*Run) error, then func(*bolt.Tx, *Run) error) (*Run, error) {
	var out *Run
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(runsBucket)
		b := bk.Get([]byte(id))
		if b == nil {
			return errNoRun
		}
		r := &Run{}
		if err := json.Unmarshal(b, r); err != nil {
			return err
		}
		if err := change(r); err != nil {
			return err
		}
		nb, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := bk.Put([]byte(id), nb); err != nil {
			return err
		}
		if then != nil {
			if err := then(tx, r); err != nil {
				return err
			}
		}
		out = r
		return nil
	})
	return out, err
}

// list returns the runs, newest first (ids sort by submission time),
// at most limit of them (0: all).
func (s *store) list(limit int) ([]*Run, error) {
	var out []*Run
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(runsBucket).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			r := &Run{}
			if err := json.Unmarshal(v, r); err != nil {
				return err
			}
			out = append(out, r)
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
}

var errNoRun = errors.New("no such run")
