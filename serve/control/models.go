package control

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/muonml/muon/configs"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/modelstore"
)

// ModelVersion is one snapshot in a store, as the dashboard shows it.
type ModelVersion struct {
	Version string    `json:"version"`
	Seq     uint64    `json:"seq"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
	// Gate is published or rejected; Reason why the gate rejected it.
	Gate   string `json:"gate"`
	Reason string `json:"reason,omitempty"`
	// Latest marks the version the store's LATEST pointer names; Serving
	// the one the newest infer run on the store served last.
	Latest  bool `json:"latest,omitempty"`
	Serving bool `json:"serving,omitempty"`
	// Ratio and Weights come from the summary of the run that made it
	// (absent for versions made outside this server).
	Ratio   float64 `json:"compression_ratio,omitempty"`
	Weights string  `json:"weights,omitempty"`
	Run     string  `json:"run,omitempty"`
}

// ModelStore is a store the server's jobs publish to or serve from.
type ModelStore struct {
	Store    string         `json:"store"`
	Versions []ModelVersion `json:"versions"`
	// Error says why the store could not be read.
	Error string `json:"error,omitempty"`
}

// storesRuns is how many of the newest runs the models view looks at for
// stores and snapshot figures.
const storesRuns = 500

// runFigures are the fields of a summary the models view reads.
type runFigures struct {
	Training *struct {
		Snapshot *struct {
			Version string  `json:"version"`
			Ratio   float64 `json:"ratio"`
			Weights string  `json:"weights"`
		} `json:"snapshot"`
	} `json:"training"`
	Inference []struct {
		Model string `json:"model"`
		Final string `json:"final_model"`
	} `json:"inference"`
}

// Models lists the model stores named by the newest runs' and the
// schedules' specs, with their versions, newest first.
func (s *Server) Models(ctx context.Context) ([]ModelStore, error) {
	runs, err := s.store.list(storesRuns)
	if err != nil {
		return nil, err
	}
	scs, err := s.store.schedules()
	if err != nil {
		return nil, err
	}
	type made struct {
		run     string
		ratio   float64
		weights string
	}
	var order []string
	clusters := map[string]kafkaio.Cluster{}
	add := func(store string, sp *configs.Spec) {
		if _, ok := clusters[store]; store != "" && !ok {
			clusters[store] = sp.Kafka.Cluster(sp.Kafka.Brokers)
			order = append(order, store)
		}
	}
	byVersion := map[string]made{} // store + " " + version
	serving := map[string]string{} // store → the version its newest infer run served
	// Runs are newest first: the first infer run of a store says what serves.
	for _, r := range runs {
		sp, err := configs.Parse(r.Name+".yaml", []byte(r.Spec), r.Set...)
		if err != nil {
			continue
		}
		var f runFigures
		if len(r.Summary) > 0 {
			_ = json.Unmarshal(r.Summary, &f)
		}
		if sp.Job == "train" && sp.Snapshot.Store != "" {
			add(sp.Snapshot.Store, sp)
			if f.Training != nil && f.Training.Snapshot != nil {
				sn := f.Training.Snapshot
				byVersion[sp.Snapshot.Store+" "+sn.Version] = made{run: r.ID, ratio: sn.Ratio, weights: sn.Weights}
			}
		}
		for i, b := range sp.Inference {
			add(b.Store, sp)
			if _, ok := serving[b.Store]; ok {
				continue
			}
			if lv := s.liveView(r.ID); lv != nil && i < len(lv.Branches) && lv.Branches[i].ModelVersion > 0 {
				serving[b.Store] = "@" + strconv.FormatInt(lv.Branches[i].ModelVersion, 10)
				continue
			}
			v := ""
			if i < len(f.Inference) {
				v = f.Inference[i].Final
				if v == "" {
					v = f.Inference[i].Model
				}
			}
			if v != "" {
				serving[b.Store] = v
			}
		}
	}
	for _, sc := range scs {
		if sp, err := configs.Parse(sc.Name+".yaml", []byte(sc.Spec), sc.Set...); err == nil {
			if sp.Job == "train" {
				add(sp.Snapshot.Store, sp)
			}
			for _, b := range sp.Inference {
				add(b.Store, sp)
			}
		}
	}
	out := make([]ModelStore, 0, len(order))
	for _, root := range order {
		ms := ModelStore{Store: root, Versions: []ModelVersion{}}
		if err := readStore(ctx, root, clusters[root], &ms); err != nil {
			ms.Error = err.Error()
		}
		for i := range ms.Versions {
			v := &ms.Versions[i]
			if m, ok := byVersion[root+" "+v.Version]; ok {
				v.Ratio, v.Weights, v.Run = m.ratio, m.weights, m.run
			}
			sv := serving[root]
			v.Serving = v.Gate == "published" && (sv == v.Version || sv == "@"+strconv.FormatUint(v.Seq, 10))
		}
		out = append(out, ms)
	}
	return out, nil
}

// readStore lists a store's published and rejected versions, newest
// first.
func readStore(ctx context.Context, root string, cluster kafkaio.Cluster, ms *ModelStore) error {
	if modelstore.IsKafka(root) {
		if len(cluster.Brokers) == 0 {
			return errors.New("on the embedded broker of the runs that used it, gone with them")
		}
	} else if _, err := os.Stat(root); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // nothing published yet
		}
		return err
	} else {
		root = filepath.Clean(root)
	}
	d := modelstore.Locate(root, cluster)
	pub, err := d.List(ctx)
	if err != nil {
		return err
	}
	latest, _, err := modelstore.Head(ctx, d)
	if err != nil && !errors.Is(err, modelstore.ErrEmpty) {
		return err
	}
	for _, v := range pub {
		ms.Versions = append(ms.Versions, ModelVersion{Version: v.String(), Seq: v.Seq, Size: v.Size, Created: v.Created.UTC(), Gate: "published", Latest: v.Seq == latest.Seq})
	}
	rej, err := d.Rejected(ctx)
	if err != nil {
		return err
	}
	for _, v := range rej {
		reason, _ := modelstore.RejectReason(v)
		ms.Versions = append(ms.Versions, ModelVersion{Version: v.String(), Seq: v.Seq, Size: v.Size, Created: v.Created.UTC(), Gate: "rejected", Reason: reason})
	}
	slices.SortFunc(ms.Versions, func(a, b ModelVersion) int { return int(int64(b.Seq) - int64(a.Seq)) })
	return nil
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	stores, err := s.Models(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stores": stores})
}
