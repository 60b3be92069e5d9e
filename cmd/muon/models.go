package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/muonml/muon/internal/printable"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/io/modelstore"
	"github.com/muonml/muon/models"
	"github.com/muonml/muon/models/snapshot"
)

// modelsHelp is the help of muon models.
const modelsHelp = `Model snapshots are signed files: a manifest (model, labels,
preprocessing statistics, metrics, lineage) and the tensors, compressed with
zstd, with a SHA-256 digest and an ed25519 signature.

  muon models keygen --dir keys --name ci
      Writes keys/ci.key (the private signing key, mode 0600: keep it where
      training runs) and keys/ci.pub (the public key: give it to every
      device that loads models). Refuses to overwrite existing files.

  muon models list --store out/train-digits/store [--trust keys]
      Lists the published versions, oldest first, marking the latest, and
      the rejected ones with their reasons. With --trust, each version is
      verified too, and the newest that verifies (the one that serves) is
      marked.

  muon models inspect --trust keys FILE
      Verifies FILE against the trusted public keys, then prints its size,
      compression ratio, model, labels, metrics, lineage and signer. A file
      that does not verify is described from its header, and the reason is
      printed; nothing behind the signature is decoded.

  muon models verify --trust keys FILE...
      Verifies each file; prints one line per file and exits 1 if any fails.

--trust takes public key files or folders of *.pub files and repeats.`

func modelsCmd() *command {
	return &command{
		name:  "models",
		usage: "models keygen [--dir DIR] [--name NAME] | list --store DIR [--trust KEY] | inspect --trust KEY FILE | verify --trust KEY FILE...",
		short: "make signing keys; inspect and verify model snapshots",
		long:  modelsHelp,
		flags: func(fs *flag.FlagSet, out *streams) func([]string) error {
			var trust stringList
			fs.Var(&trust, "trust", "trusted public key `file or folder` (*.pub); repeat for more")
			dir := fs.String("dir", "keys", "keygen: the `folder` to write the key pair to")
			name := fs.String("name", "muon", "keygen: the key pair's file `name`")
			store := fs.String("store", "", "list: the model store: a `folder`, or kafka://TOPIC with --brokers")
			var brokers brokerList
			fs.Var(&brokers, "brokers", "list: the Kafka `host:port` list of a store on Kafka (plaintext)")
			return func(args []string) error {
				if len(args) == 0 {
					return fmt.Errorf("%w: name a subcommand: keygen, list, inspect or verify", errUsage)
				}
				sub := args[0]
				if err := fs.Parse(args[1:]); err != nil {
					return fmt.Errorf("%w: %v", errUsage, err)
				}
				rest := fs.Args()
				switch sub {
				case "keygen":
					if len(rest) > 0 {
						return fmt.Errorf("%w: keygen takes no arguments", errUsage)
					}
					return keygen(out.stdout, *dir, *name)
				case "inspect", "verify":
					return verifySnapshots(out.stdout, sub, rest, trust)
				case "list":
					if *store == "" || len(rest) > 0 {
						return fmt.Errorf("%w: list takes --store and no arguments", errUsage)
					}
					var ring snapshot.Keyring
					if len(trust) > 0 {
						var err error
						if ring, err = snapshot.LoadKeyring(trust...); err != nil {
							return err
						}
					}
					return listStore(out.stdout, *store, kafkaio.Plain(brokers...), ring)
				}
				return fmt.Errorf("%w: unknown subcommand %q: keygen, list, inspect or verify", errUsage, sub)
			}
		},
	}
}

// keygen makes a signing key pair in dir and prints where it went.
func keygen(w io.Writer, dir, name string) error {
	priv, pub, err := snapshot.GenerateKey(dir, name)
	if err != nil {
		return err
	}
	key, err := snapshot.LoadPublicKey(pub)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "private key  %s (sign with it; keep it secret)\npublic key   %s (trust it where models are loaded)\nkey id       %s\n",
		priv, pub, snapshot.KeyIDOf(key))
	return nil
}

// verifySnapshots runs models inspect (one file) or verify (any number)
// against the keys trust names.
func verifySnapshots(w io.Writer, sub string, files []string, trust []string) error {
	if len(files) == 0 || (sub == "inspect" && len(files) > 1) {
		return fmt.Errorf("%w: %s takes snapshot files (inspect: one)", errUsage, sub)
	}
	if len(trust) == 0 {
		return fmt.Errorf("%w: --trust names the public keys to verify against", errUsage)
	}
	ring, err := snapshot.LoadKeyring(trust...)
	if err != nil {
		return err
	}
	if sub == "inspect" {
		return inspectSnapshot(w, files[0], ring)
	}
	failed := 0
	for _, f := range files {
		snap, err := readSnapshot(f, ring)
		if err != nil {
			failed++
			fmt.Fprintf(w, "REFUSED  %s: %v\n", f, err)
			continue
		}
		fmt.Fprintf(w, "ok       %s: %s, signed by %s\n", f, printable.String(snap.Manifest.Name, 0), snap.Signer)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d snapshots refused", failed, len(files))
	}
	return nil
}

// readSnapshot reads and verifies a snapshot file; one named as a store
// keeps versions (v000000000007-name.snap) must have been signed as that
// name and version.
func readSnapshot(path string, ring snapshot.Keyring) (*snapshot.Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	snap, err := snapshot.Read(f, ring, snapshot.Limits{})
	if err != nil {
		return nil, err
	}
	if seq, name, ok := modelstore.ParseFileName(filepath.Base(path)); ok {
		if err := snap.CheckPlace(name, seq); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// listStore prints a store's versions; with a keyring, their verification
// and the version that serves.
func listStore(w io.Writer, root string, cluster kafkaio.Cluster, ring snapshot.Keyring) error {
	ctx := context.Background()
	d := modelstore.Locate(root, cluster)
	if modelstore.IsKafka(root) {
		if len(cluster.Brokers) == 0 {
			return fmt.Errorf("%w: --store %s is on Kafka: give --brokers", errUsage, root)
		}
	} else if _, err := os.Stat(root); err != nil {
		return err
	}
	vs, err := d.List(ctx)
	if err != nil {
		return err
	}
	latest, pointer, err := modelstore.Head(ctx, d)
	if err != nil && !errors.Is(err, modelstore.ErrEmpty) {
		return err
	}
	if pointer != nil {
		fmt.Fprintf(w, "%s: warning: %v; the newest version is taken as the latest\n", root, pointer)
	}
	var serving modelstore.Version
	if ring != nil && len(vs) > 0 {
		serving, _, _ = modelstore.LatestVerified(ctx, d, verifier(ring))
	}
	if len(vs) == 0 {
		fmt.Fprintf(w, "%s: no published versions\n", root)
	}
	for _, v := range vs {
		var marks []string
		if v.Seq == latest.Seq {
			marks = append(marks, "latest")
		}
		if ring != nil {
			if err := verifyVersion(ctx, d, v, ring); err != nil {
				marks = append(marks, "REFUSED: "+err.Error())
			} else {
				marks = append(marks, "verified")
			}
			if v.Seq == serving.Seq {
				marks = append(marks, "serving")
			}
		}
		fmt.Fprintf(w, "%-24s %8d bytes  %s  %s\n", v, v.Size, v.Created.UTC().Format("2006-01-02 15:04:05"), strings.Join(marks, ", "))
	}
	rej, err := d.Rejected(ctx)
	if err != nil {
		return err
	}
	for _, v := range rej {
		reason, _ := modelstore.RejectReason(v)
		fmt.Fprintf(w, "%-24s %8d bytes  %s  rejected: %s\n", v, v.Size, v.Created.UTC().Format("2006-01-02 15:04:05"), reason)
	}
	return nil
}

// verifier checks a version's bytes: its signature and its place (the
// name and version signed).
func verifier(ring snapshot.Keyring) func(modelstore.Version, io.Reader) error {
	return func(v modelstore.Version, r io.Reader) error {
		snap, err := snapshot.Read(r, ring, snapshot.Limits{})
		if err != nil {
			return err
		}
		return snap.CheckPlace(v.Name, v.Seq)
	}
}

// verifyVersion reads version v of store d and checks it (verifier).
func verifyVersion(ctx context.Context, d modelstore.Store, v modelstore.Version, ring snapshot.Keyring) error {
	rc, err := d.Open(ctx, v)
	if err != nil {
		return err
	}
	defer rc.Close()
	return verifier(ring)(v, rc)
}

// inspectSnapshot prints what a person needs to know about a snapshot.
// printHeader describes a snapshot that did not verify from its header
// alone: nothing behind the signature is decoded.
func printHeader(w io.Writer, path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if h, err := snapshot.ReadHeader(f); err == nil {
		signed := "unsigned"
		if h.Signed {
			signed = "signed by key " + h.Signer.String()
		}
		fmt.Fprintf(w, "file          %s (not verified)\nheader        format %d, %d bytes compressed, %d raw, %s\n", path, h.Version, h.BodySize, h.RawLen, signed)
	}
}

func inspectSnapshot(w io.Writer, path string, ring snapshot.Keyring) error {
	snap, err := readSnapshot(path, ring)
	if err != nil {
		printHeader(w, path)
		return fmt.Errorf("%s refused: %w", path, err)
	}
	m := snap.Manifest
	desc := string(m.Model.Kind)
	var params int
	if mm, err := models.New(m.Model, 1); err == nil {
		desc, params = mm.String(), mm.NumParams()
	}
	fmt.Fprintf(w, "file          %s\n", path)
	fmt.Fprintf(w, "signer        %s (verified; digest %x…)\n", snap.Signer, snap.Digest[:8])
	fmt.Fprintf(w, "name          %s\n", printable.String(m.Name, 0))
	fmt.Fprintf(w, "model         %s, %d parameters\n", desc, params)
	if params > 0 {
		fmt.Fprintf(w, "size          %d bytes (%d decompressed); %.1f× smaller than the float64 weights (%d bytes)\n",
			snap.Size, snap.RawSize, float64(params*8)/float64(snap.Size), params*8)
	} else {
		fmt.Fprintf(w, "size          %d bytes (%d decompressed)\n", snap.Size, snap.RawSize)
	}
	fmt.Fprintf(w, "weights       %s, %.0f%% pruned\n", m.Compression.Weights, 100*m.Compression.Sparsity)
	var tensors []string
	for _, t := range snap.Tensors {
		kind := "dense"
		if t.Sparse() {
			kind = fmt.Sprintf("sparse %d/%d", len(t.Index), t.Len())
		}
		tensors = append(tensors, fmt.Sprintf("%s %v %s %s", t.Name, t.Shape, t.DType, kind))
	}
	fmt.Fprintf(w, "tensors       %s\n", strings.Join(tensors, "; "))
	if len(m.Labels) > 0 {
		labels := make([]string, len(m.Labels))
		for i, l := range m.Labels {
			labels[i] = printable.String(l, 0)
		}
		fmt.Fprintf(w, "labels        %s\n", printable.String(strings.Join(labels, ", "), 2000))
	}
	printSnapshotMetrics(w, m.Metrics)
	printLineage(w, m.Lineage)
	return nil
}

// printSnapshotMetrics prints a manifest's metrics, by name.
func printSnapshotMetrics(w io.Writer, metrics map[string]models.Metrics) {
	names := make([]string, 0, len(metrics))
	for k := range metrics {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := metrics[k]
		if v.Confusion == nil && v.RMSE == 0 && v.MAE == 0 && v.Accuracy == 0 {
			fmt.Fprintf(w, "metrics       %-22s %d rows: loss %.4f\n", k, v.N, v.Loss)
		} else if v.Confusion == nil && (v.RMSE > 0 || v.MAE > 0) {
			fmt.Fprintf(w, "metrics       %-22s %d rows: RMSE %.4f, MAE %.4f\n", k, v.N, v.RMSE, v.MAE)
		} else {
			fmt.Fprintf(w, "metrics       %-22s %d rows: accuracy %.4f, balanced %.4f\n", k, v.N, v.Accuracy, v.BalancedAccuracy)
		}
	}
}

// printLineage prints when and from what a snapshot was made.
func printLineage(w io.Writer, l snapshot.Lineage) {
	fmt.Fprintf(w, "created       %s by muon %s, spec %s\n", l.Created.Format("2006-01-02 15:04:05 MST"), l.MuonVersion, l.SpecHash)
	if !l.Window.IsZero() {
		from := "the job's initial model"
		if !l.Base.IsZero() {
			from = "the model of the window ending " + l.Base.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "window        ending %s, trained from %s\n", l.Window.Format(time.RFC3339), from)
	}
	for _, s := range l.Sources {
		use := s.Use
		if use == "" {
			use = "source"
		}
		switch s.Kind {
		case "kafka":
			// To is one past the last offset read.
			if s.To <= s.From {
				fmt.Fprintf(w, "%-13s kafka %s[%d] empty at offset %d\n", use, s.Topic, s.Partition, s.From)
				continue
			}
			fmt.Fprintf(w, "%-13s kafka %s[%d] offsets %d–%d (%d records)\n", use, s.Topic, s.Partition, s.From, s.To-1, s.To-s.From)
		default:
			fmt.Fprintf(w, "%-13s %s, %d files: %s\n", use, s.Kind, len(s.Files), strings.Join(s.Files, ", "))
		}
	}
}
