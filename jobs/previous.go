package jobs

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/io/parquetio"
	"github.com/muonml/muon/models/snapshot"
)

// Previous is where a train job with source.start: previous started: the
// snapshot whose data it continues and, per partition, the first offset
// it read.
type Previous struct {
	// Version is that snapshot's version; "" if the store had none of
	// this job's (the read started at the earliest offsets).
	Version string `json:"version,omitempty"`
	// Offsets maps partition → the first offset this run read.
	Offsets map[int]int64 `json:"offsets,omitempty"`
}

// resolvePrevious turns source.start: previous into explicit offsets: per
// partition of the source topic, the end of the range that the newest
// snapshot of this job in its store (verified with the public half of
// snapshot.key) trained on. Without one, the read starts at the earliest
// offsets. It returns a copy of spec; spec is not changed.
func resolvePrevious(ctx context.Context, spec *configs.Spec, cluster kafkaio.Cluster, progress io.Writer) (*configs.Spec, *Previous, error) {
	key, err := snapshot.LoadPrivateKey(spec.Snapshot.Key)
	if err != nil {
		return nil, nil, err
	}
	ring := snapshot.NewKeyring(key.Public().(ed25519.PublicKey))
	var man snapshot.Manifest
	v, _, err := modelstore.LatestVerified(ctx, modelstore.Locate(spec.Snapshot.Store, cluster), func(v modelstore.Version, r io.Reader) error {
		if v.Name != spec.Name {
			return fmt.Errorf("another job's model")
		}
		snap, err := snapshot.Read(r, ring, snapshot.Limits{})
		if err == nil {
			err = snap.CheckPlace(v.Name, v.Seq)
		}
		if err == nil {
			man = snap.Manifest
		}
		return err
	})
	out := *spec
	out.Source.Offsets = map[int]int64{}
	out.Source.Start = "offsets"
	prev := &Previous{Offsets: out.Source.Offsets}
	topic := spec.Source.Topics[0]
	switch {
	case errors.Is(err, modelstore.ErrEmpty) || err != nil && v.Seq == 0 && man.Name == "":
		// No model of this job yet: read everything.
		out.Source.Start = "earliest"
		fmt.Fprintf(progress, "muon: start: previous: %s has no verified model of %s yet; reading %s from the earliest offsets\n", spec.Snapshot.Store, spec.Name, topic)
		return &out, prev, nil
	case err != nil:
		return nil, nil, fmt.Errorf("start: previous: %w", err)
	}
	prev.Version = v.String()
	for _, s := range man.Lineage.Sources {
		if s.Kind == "kafka" && s.Use == "train" && s.Topic == topic {
			out.Source.Offsets[s.Partition] = max(out.Source.Offsets[s.Partition], s.To)
		}
	}
	if len(out.Source.Offsets) == 0 {
		return nil, nil, fmt.Errorf("start: previous: %s's lineage has no offsets of topic %s (it was trained on %s): set source.start to earliest or offsets", v, topic, describeSources(man.Lineage.Sources))
	}
	ends, err := kafkaio.EndOffsets(ctx, cluster, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("start: previous: %w", err)
	}
	var parts []string
	fresh := false
	for _, p := range slices.Sorted(maps.Keys(ends)) {
		from, ok := out.Source.Offsets[p]
		if !ok {
			out.Source.Offsets[p] = 0 // a partition added since: all of it
		}
		fresh = fresh || ends[p] > from
		parts = append(parts, fmt.Sprintf("%d@%d", p, out.Source.Offsets[p]))
	}
	if !fresh {
		return nil, nil, fmt.Errorf("%w: %s has no records after those %s trained on (partition@offset %s): nothing to retrain on", ErrNothingNew, topic, v, strings.Join(parts, " "))
	}
	fmt.Fprintf(progress, "muon: start: previous: reading %s from where %s's data ended (partition@offset %s)\n", topic, v, strings.Join(parts, " "))
	return &out, prev, nil
}

func describeSources(ss []snapshot.Source) string {
	var out []string
	for _, s := range ss {
		if s.Kind == "kafka" {
			out = append(out, fmt.Sprintf("%s/%d (%s)", s.Topic, s.Partition, s.Use))
		} else {
			out = append(out, fmt.Sprintf("%d %s files (%s)", len(s.Files), s.Kind, s.Use))
		}
	}
	if len(out) == 0 {
		return "nothing recorded"
	}
	return strings.Join(out, ", ")
}

// ErrNothingNew means a train job with source.start: previous found no
// record its previous model had not trained on.
var ErrNothingNew = errors.New("no new data")

// checkArchiveRange fails a train job whose source.archive_from/_to select
// no file of its archive, naming the range, before the job starts.
func checkArchiveRange(spec *configs.Spec) error {
	src := spec.Source
	if src.ArchiveFrom.IsZero() && src.ArchiveTo.IsZero() {
		return nil
	}
	files, err := parquetio.Files(src.Archive...)
	if err != nil {
		return fmt.Errorf("source.archive: %w", err)
	}
	for _, f := range files {
		ok, err := parquetio.InRange(f, src.ArchiveFrom, src.ArchiveTo)
		if err != nil {
			return fmt.Errorf("source.archive_from/archive_to: %w", err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("source.archive_from/archive_to: no partition of %s overlaps [%s, %s) (%d files in all)",
		strings.Join(src.Archive, ", "), fmtBound(src.ArchiveFrom), fmtBound(src.ArchiveTo), len(files))
}

func fmtBound(t time.Time) string {
	if t.IsZero() {
		return "open"
	}
	return t.Format(time.RFC3339)
}
