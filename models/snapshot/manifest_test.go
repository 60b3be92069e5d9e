package snapshot

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/muonml/muon/models"
)

// Version 3 files decode with exactly this dictionary.
func TestManifestDictFixed(t *testing.T) {
	const want = "bc536fe66788629ca917aa4bfc082c3202421b9c99005bdee0934c05a61d3da6"
	if got := fmt.Sprintf("%x", sha256.Sum256([]byte(manifestDict))); got != want {
		t.Fatalf("manifestDict's SHA-256 is %s, was %s: version 3 files no longer read; a new dictionary needs a new format version", got, want)
	}
}

// bodyManifest is the manifest JSON of a written file.
func bodyManifest(t *testing.T, file []byte) string {
	t.Helper()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderDictRaw(manifestDictID, []byte(manifestDict)))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(file[headerSize:], nil)
	if err != nil {
		t.Fatal(err)
	}
	n := int(raw[0]) | int(raw[1])<<8 | int(raw[2])<<16 | int(raw[3])<<24
	return string(raw[4 : 4+n])
}

// The manifest's JSON leaves out what carries nothing (labels the model's
// descriptor repeats, metrics a head does not measure) and reads back as
// the manifest written, for a classifier and a regression model.
func TestManifestLean(t *testing.T) {
	key := testKey(t, 1)
	classifier, _ := v2Snapshot()
	regression := Manifest{
		Name:        "engines",
		Version:     4,
		Model:       models.Desc{Kind: models.MLP, Inputs: 24, Hidden: []int{32}, Outputs: 1, Head: models.SquaredHead, Activation: models.ReLU},
		Metrics:     map[string]models.Metrics{"float.test": {N: 100, Loss: 410.5, RMSE: 28.65, MAE: 20.1}, "perfect": {N: 3}},
		Compression: Compression{Weights: "int8"},
		Lineage:     Lineage{Created: time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)},
	}
	differentLabels := classifier
	differentLabels.Model.Labels = []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	modelLabelsOnly := classifier
	modelLabelsOnly.Labels = nil
	for _, tt := range []struct {
		name      string
		m         Manifest
		want      Manifest // read back; m if zero
		has, hasn []string
	}{
		{"classifier", classifier, Manifest{}, []string{`"labels":["0"`, `"accuracy":0.968`, `"balanced_accuracy":0.967`},
			[]string{`"rmse"`, `"mae"`}},
		{"regression", regression, Manifest{}, []string{`"rmse":28.65`, `"mae":20.1`, `"perfect":{"n":3}`},
			[]string{`"accuracy"`, `"balanced_accuracy"`, `"labels"`}},
		{"labels differ", differentLabels, Manifest{}, []string{`"labels":["a"`, `"labels":["0"`}, nil},
		// A manifest that names no labels beside a descriptor that does
		// reads back with the descriptor's.
		{"descriptor's labels only", modelLabelsOnly, classifier, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			snap, file := writeRead(t, key, tt.m, nil)
			js := bodyManifest(t, file)
			for _, s := range tt.has {
				if !strings.Contains(js, s) {
					t.Errorf("manifest %s lacks %s", js, s)
				}
			}
			for _, s := range tt.hasn {
				if strings.Contains(js, s) {
					t.Errorf("manifest %s has %s", js, s)
				}
			}
			if n := strings.Count(js, `"labels"`); len(tt.m.Labels) > 0 && n != strings.Count(tt.name, "differ")+1 {
				t.Errorf("labels %d times in %s", n, js)
			}
			want := tt.want
			if want.Name == "" {
				want = tt.m
			}
			if !reflect.DeepEqual(snap.Manifest, want) {
				t.Errorf("manifest\n%+v\nwant\n%+v", snap.Manifest, want)
			}
		})
	}
}

// A version 2 file written again is version 3, reads back the same, and
// is smaller by what its manifest no longer repeats.
func TestVersion2Rewritten(t *testing.T) {
	key := testKey(t, 1)
	v2, err := os.ReadFile("testdata/v2.snap")
	if err != nil {
		t.Fatal(err)
	}
	m, ts := v2Snapshot()
	snap, file := writeRead(t, key, m, ts)
	if h, _ := ReadHeader(bytes.NewReader(file)); h.Version != FormatVersion || !reflect.DeepEqual(snap.Tensors, ts) {
		t.Fatalf("version %d, tensors equal: %v", h.Version, reflect.DeepEqual(snap.Tensors, ts))
	}
	t.Logf("%d bytes, version 2 wrote %d", len(file), len(v2))
	if len(file) > len(v2)-150 { // measured: 194 bytes fewer
		t.Errorf("%d bytes, version 2 wrote %d", len(file), len(v2))
	}
	if !reflect.DeepEqual(snap.Manifest.Metrics, m.Metrics) || !reflect.DeepEqual(snap.Manifest.Labels, m.Labels) || !reflect.DeepEqual(snap.Manifest.Model, m.Model) {
		t.Errorf("manifest\n%+v\nwant\n%+v", snap.Manifest, m)
	}
}
