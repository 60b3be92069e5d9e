package publish

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"github.com/muonml/muon/io/kafkaio"

	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/snapshot"
)

// Result is what became of a bounded train job's snapshot.
type Result struct {
	Published bool   `json:"published"`
	Version   string `json:"version"`
	Path      string `json:"path"`
	// Reason is why the quality gate rejected the snapshot.
	Reason string `json:"reason,omitempty"`
	Size   int64  `json:"size"`
	// Ratio is the size of the float64 weights over the snapshot's.
	Ratio    float64                   `json:"ratio"`
	Weights  string                    `json:"weights"`
	Sparsity float64                   `json:"sparsity"`
	Metrics  map[string]models.Metrics `json:"metrics"`
	Signer   string                    `json:"signer"`
}

// Outcome reads what became of version seq of name, which a job published
// (or, published false, rejected) to sp's store: the snapshot itself,
// verified with the public half of sp's key, says its size, compression,
// metrics and signer; the store says why it was rejected.
func Outcome(ctx context.Context, sp Spec, cluster kafkaio.Cluster, name string, seq uint64, published bool) (*Result, error) {
	key, err := snapshot.LoadPrivateKey(sp.Key)
	if err != nil {
		return nil, err
	}
	store := modelstore.Locate(sp.Store, cluster)
	list := store.List
	if !published {
		list = store.Rejected
	}
	vs, err := list(ctx)
	if err != nil {
		return nil, fmt.Errorf("model store %s: %w", sp.Store, err)
	}
	var v *modelstore.Version
	for i := range vs {
		if vs[i].Seq == seq && vs[i].Name == name {
			v = &vs[i]
		}
	}
	if v == nil {
		return nil, fmt.Errorf("model store %s has no version %s@%d, which the job reported", sp.Store, name, seq)
	}
	r, err := store.Open(ctx, *v)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	pub := key.Public().(ed25519.PublicKey)
	snap, err := snapshot.Read(r, snapshot.NewKeyring(pub), snapshot.Limits{})
	if err == nil {
		err = snap.CheckPlace(v.Name, v.Seq)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Path, err)
	}
	m, err := models.New(snap.Manifest.Model, 1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Path, err)
	}
	res := &Result{Published: published, Version: v.String(), Path: v.Path, Size: v.Size,
		Ratio: float64(8*m.NumParams()) / float64(v.Size), Weights: snap.Manifest.Compression.Weights,
		Sparsity: snap.Manifest.Compression.Sparsity, Metrics: snap.Manifest.Metrics, Signer: snapshot.KeyIDOf(pub).String()}
	if !published {
		if res.Reason, err = modelstore.RejectReason(*v); err != nil {
			return nil, err
		}
	}
	return res, nil
}
