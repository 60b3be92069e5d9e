package snapshot

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/muonml/muon/models"
)

func testKey(t testing.TB, seed byte) ed25519.PrivateKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func testSnapshot() (Manifest, []Tensor) {
	rng := rand.New(rand.NewPCG(1, 2))
	w := make([]float32, 100*64)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	f16 := make([]uint16, 10*100)
	for i := range f16 {
		f16[i] = uint16(rng.Uint32())
	}
	i8 := make([]int8, 10*100)
	for i := range i8 {
		i8[i] = int8(rng.IntN(255) - 127)
	}
	scales := make([]float32, 10)
	for i := range scales {
		scales[i] = float32(i+1) / 127
	}
	m := Manifest{
		Name:        "digits",
		Model:       models.Desc{Kind: models.MLP, Inputs: 64, Hidden: []int{100}, Classes: 10, Head: models.SoftmaxHead, Activation: models.ReLU},
		Labels:      []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
		Preprocess:  []byte(`{"features":64}`),
		Metrics:     map[string]models.Metrics{"float": {N: 1797, Accuracy: 0.968}},
		Compression: Compression{Sparsity: 0.5, Weights: "int8"},
		Lineage: Lineage{Sources: []Source{{Kind: "kafka", Topic: "digits", Partition: 2, From: 0, To: 955}},
			SpecHash: "abc", MuonVersion: "test", Created: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)},
	}
	ts := []Tensor{
		{Name: "dense0.w", Shape: []int{100, 64}, DType: Float32, F32: w},
		{Name: "dense0.b", Shape: []int{100}, DType: Float32, F32: make([]float32, 100)},
		{Name: "dense1.w", Shape: []int{10, 100}, DType: Float16, F16: f16},
		{Name: "dense1.q", Shape: []int{100, 10}, DType: Int8, I8: i8, Scales: scales},
		{Name: "dense1.sparse", Shape: []int{100, 10}, DType: Int8, I8: []int8{5, -7, 127}, Scales: scales, Index: []uint32{0, 17, 999}},
	}
	return m, ts
}

// v2Snapshot is what testdata/v2.snap holds: testSnapshot with the labels
// in the model's descriptor too, metrics with the fields a classifier does
// not measure at zero, a lineage with an empty partition, base64
// statistics in the preprocessing, and a shared tensor.
func v2Snapshot() (Manifest, []Tensor) {
	m, ts := testSnapshot()
	m.Version = 3
	m.Model.Labels = m.Labels
	m.Preprocess = []byte(`{"clip":10,"features":4,"mean32":"AACAPwAAAEAAAEBAAACAQA==","names":["a","b","c","d"],"rows":7,"std32":"AACAPwAAgD8AAIA/AACAPw=="}`)
	m.Metrics = map[string]models.Metrics{
		"float.test":      {N: 1797, Loss: 0.1, Accuracy: 0.968, BalancedAccuracy: 0.967},
		"compressed.test": {N: 1797, Loss: 0.12, Accuracy: 0.96, BalancedAccuracy: 0.959},
	}
	m.Lineage.Sources = append(m.Lineage.Sources, Source{Kind: "kafka", Use: "train", Topic: "digits", Partition: 3})
	ts = append(ts, Tensor{Name: "shared", Shape: []int{5, 7}, DType: Shared, Codes: []uint8{3, 0, 2}, Codebook: []float32{-1, 0.5, 2, 4}, Bits: 2, Index: []uint32{1, 20, 34}})
	return m, ts
}

func encode(t testing.TB, key ed25519.PrivateKey) []byte {
	t.Helper()
	m, ts := testSnapshot()
	var buf bytes.Buffer
	if err := Write(&buf, m, ts, key); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeRead writes m and ts signed by key and reads the file back,
// trusting key: the snapshot read, and the file.
func writeRead(t testing.TB, key ed25519.PrivateKey, m Manifest, ts []Tensor) (*Snapshot, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, m, ts, key); err != nil {
		t.Fatal(err)
	}
	s, err := Read(bytes.NewReader(buf.Bytes()), NewKeyring(key.Public().(ed25519.PublicKey)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return s, buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	key := testKey(t, 1)
	file := encode(t, key)
	snap, err := Read(bytes.NewReader(file), NewKeyring(testKey(t, 9).Public().(ed25519.PublicKey), key.Public().(ed25519.PublicKey)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m, ts := testSnapshot()
	if !reflect.DeepEqual(snap.Manifest, m) {
		t.Errorf("manifest\n%+v\nwant\n%+v", snap.Manifest, m)
	}
	if !reflect.DeepEqual(snap.Tensors, ts) {
		t.Errorf("tensors differ after a round trip")
	}
	if snap.Signer != KeyIDOf(key.Public().(ed25519.PublicKey)) || snap.Size != int64(len(file)) || snap.RawSize <= 0 {
		t.Errorf("signer %s, size %d of %d, raw %d", snap.Signer, snap.Size, len(file), snap.RawSize)
	}
}

// readTestdata reads testdata/v<version>.snap, a snapshot written by that
// format version's writer and signed with testKey(t, 1), checks that its
// header says that version, and returns it and the key.
func readTestdata(t *testing.T, version uint16) (*Snapshot, ed25519.PrivateKey) {
	t.Helper()
	file, err := os.ReadFile(fmt.Sprintf("testdata/v%d.snap", version))
	if err != nil {
		t.Fatal(err)
	}
	key := testKey(t, 1)
	if h, err := ReadHeader(bytes.NewReader(file)); err != nil || h.Version != version {
		t.Fatalf("header %+v, %v", h, err)
	}
	snap, err := Read(bytes.NewReader(file), NewKeyring(key.Public().(ed25519.PublicKey)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return snap, key
}

// Snapshots published before the coded layout still load:
// testdata/v1.snap is testSnapshot with a shared tensor and version 1,
// written by the version 1 writer.
func TestReadVersion1(t *testing.T) {
	snap, key := readTestdata(t, 1)
	m, ts := testSnapshot()
	m.Version = 1
	ts = append(ts, Tensor{Name: "shared", Shape: []int{5, 7}, DType: Shared, Codes: []uint8{3, 0, 2}, Codebook: []float32{-1, 0.5, 2, 4}, Bits: 2, Index: []uint32{1, 20, 34}})
	if !reflect.DeepEqual(snap.Manifest, m) || !reflect.DeepEqual(snap.Tensors, ts) {
		t.Fatal("version 1 snapshot read back differently")
	}
	// Written again, it is version FormatVersion, and reads back the same.
	again, file := writeRead(t, key, snap.Manifest, snap.Tensors)
	if h, _ := ReadHeader(bytes.NewReader(file)); h.Version != FormatVersion || !reflect.DeepEqual(again.Tensors, ts) {
		t.Fatalf("version %d, tensors equal: %v", h.Version, reflect.DeepEqual(again.Tensors, ts))
	}
}

// Snapshots of format version 2 still load: testdata/v2.snap is
// v2Snapshot, written by the version 2 writer (labels twice, a
// classifier's metrics with RMSE and MAE at zero, empty partitions in the
// lineage).
func TestReadVersion2(t *testing.T) {
	snap, _ := readTestdata(t, 2)
	m, ts := v2Snapshot()
	if !reflect.DeepEqual(snap.Tensors, ts) {
		t.Error("version 2 tensors read back differently")
	}
	var got, want map[string]any
	json.Unmarshal(snap.Manifest.Preprocess, &got)
	json.Unmarshal(m.Preprocess, &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("preprocessing %s, want %s", snap.Manifest.Preprocess, m.Preprocess)
	}
	snap.Manifest.Preprocess = m.Preprocess
	if !reflect.DeepEqual(snap.Manifest, m) {
		t.Errorf("manifest\n%+v\nwant\n%+v", snap.Manifest, m)
	}
}

// Pruned tensors, and values far from uniform, take the coded layout and
// round-trip; values the coder cannot shorten (uniform int8 or float16)
// keep the plain one, so the coded layout never costs bytes.
func TestCodedLayout(t *testing.T) {
	for _, tt := range codedTensors(rand.New(rand.NewPCG(7, 7))) {
		raw := appendTensor(nil, &tt)
		if tt.Len() >= 64*100 && tt.DType != Float16 && raw[0] != layoutCoded { // the float16 values are uniform
			t.Errorf("%s %v sparse %v: layout %d", tt.Name, tt.Shape, tt.Sparse(), raw[0])
		}
		s, _ := writeRead(t, testKey(t, 1), Manifest{}, []Tensor{tt})
		if !reflect.DeepEqual(s.Tensors[0], tt) {
			t.Fatalf("%s %v sparse %v read back differently", tt.Name, tt.Shape, tt.Sparse())
		}
	}
	_, ts := testSnapshot()
	if raw := appendTensor(nil, &ts[3]); raw[0] != layoutDense { // uniform int8
		t.Errorf("uniform int8 values: layout %d", raw[0])
	}
}

// Every way a file can be wrong is refused with its own error, before
// anything is decompressed.
func TestRefusals(t *testing.T) {
	key, other := testKey(t, 1), testKey(t, 2)
	trusted := NewKeyring(key.Public().(ed25519.PublicKey))
	good := encode(t, key)
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	resign := func(b []byte, k ed25519.PrivateKey, id KeyID) []byte {
		copy(b[12:20], id[:])
		d := digestOf(b[:digestAt], b[headerSize:])
		copy(b[digestAt:], d[:])
		copy(b[digestAt+32:], ed25519.Sign(k, d[:]))
		return b
	}
	tests := []struct {
		name   string
		file   []byte
		limits Limits
		want   error
	}{
		{"empty", nil, Limits{}, ErrTruncated},
		{"not a snapshot", mutate(func(b []byte) []byte { copy(b, "PK\x03\x04"); return b }), Limits{}, ErrNotSnapshot},
		{"unknown version", mutate(func(b []byte) []byte { b[8] = FormatVersion + 1; return b }), Limits{}, ErrVersion},
		{"version 0", mutate(func(b []byte) []byte { b[8] = 0; return b }), Limits{}, ErrVersion},
		{"truncated header", good[:headerSize-1], Limits{}, ErrTruncated},
		{"truncated body", good[:len(good)-1], Limits{}, ErrTruncated},
		{"trailing bytes", append(append([]byte(nil), good...), 0), Limits{}, ErrDigest},
		{"bit flip in the body", mutate(func(b []byte) []byte { b[headerSize+10] ^= 1; return b }), Limits{}, ErrDigest},
		{"bit flip in the raw size", mutate(func(b []byte) []byte { b[28] ^= 1; return b }), Limits{}, ErrDigest},
		{"bit flip in the digest", mutate(func(b []byte) []byte { b[digestAt] ^= 0x80; return b }), Limits{}, ErrDigest},
		{"unsigned", mutate(func(b []byte) []byte { clear(b[digestAt+32 : headerSize]); return b }), Limits{}, ErrUnsigned},
		{"unknown signer", encode(t, other), Limits{}, ErrUnknownSigner},
		{"bit flip in the signature", mutate(func(b []byte) []byte { b[headerSize-1] ^= 1; return b }), Limits{}, ErrSignature},
		{"signed by another key under a trusted id", mutate(func(b []byte) []byte {
			return resign(b, other, KeyIDOf(key.Public().(ed25519.PublicKey)))
		}), Limits{}, ErrSignature},
		{"body over the limit", good, Limits{MaxBody: 100}, ErrTooLarge},
		{"raw size over the limit", good, Limits{MaxRaw: 1000}, ErrTooLarge},
		{"manifest over the limit", good, Limits{MaxManifest: 10}, ErrTooLarge},
		{"too many tensors", good, Limits{MaxTensors: 2}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tt.file), trusted, tt.limits)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

// A body that lies about itself, signed by a trusted key (a key holder's
// bug, not an attacker's edit), is still refused by the decoder's bounds.
func TestSignedMalformedBodies(t *testing.T) {
	key := testKey(t, 1)
	trusted := NewKeyring(key.Public().(ed25519.PublicKey))
	le := binary.LittleEndian
	tensor := func(name string, dtype, rank byte, dims []uint32, layout byte, extra []byte) []byte {
		b := le.AppendUint32(nil, 2)
		b = append(b, "{}"...)
		b = le.AppendUint32(b, 1)
		b = le.AppendUint16(b, uint16(len(name)))
		b = append(b, name...)
		b = append(b, dtype, rank)
		for _, d := range dims {
			b = le.AppendUint32(b, d)
		}
		b = append(b, layout)
		return append(b, extra...)
	}
	for name, raw := range map[string][]byte{
		"rank 0":                tensor("w", 1, 0, nil, 0, nil),
		"huge dimension":        tensor("w", 1, 2, []uint32{math.MaxUint32, math.MaxUint32}, 0, nil),
		"values missing":        tensor("w", 1, 1, []uint32{4}, 0, make([]byte, 12)),
		"unknown type":          tensor("w", 9, 1, []uint32{1}, 0, make([]byte, 4)),
		"unknown layout":        tensor("w", 1, 1, []uint32{1}, 7, make([]byte, 4)),
		"bitmap past the end":   tensor("w", 1, 1, []uint32{4}, 1, append([]byte{0x10}, make([]byte, 4)...)),
		"bitmap values missing": tensor("w", 1, 1, []uint32{4}, 1, append([]byte{0x0f}, make([]byte, 12)...)),
		"bitmap cut short":      tensor("w", 1, 1, []uint32{20}, 1, []byte{0xff}),
		"trailing bytes":        tensor("w", 1, 1, []uint32{1}, 0, make([]byte, 5)),
		// The coded layout is version 2's.
		"coded in version 1": tensor("w", 3, 1, []uint32{1}, layoutCoded, codedInt8(0, 1, []int8{5})),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeBody(raw, 1, Limits{}.withDefaults()); !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v, want ErrFormat", err)
			}
		})
	}
	good := codedInt8(0, 4, []int8{5, -3, 0, 127})
	longer := append([]byte{}, good...)
	le.PutUint32(longer[1:], le.Uint32(longer[1:])+1)
	// v2 makes a version 2 body of a version 1 one: no blobs after the
	// manifest "{}".
	v2 := func(b []byte) []byte { return append(append(append([]byte{}, b[:6]...), 0), b[6:]...) }
	if s, err := decodeBody(v2(tensor("w", 3, 1, []uint32{4}, layoutCoded, good)), 2, Limits{}.withDefaults()); err != nil || !reflect.DeepEqual(s.Tensors[0].I8, []int8{5, -3, 0, 127}) {
		t.Fatalf("a good coded tensor: %v", err)
	}
	withBlobs := func(man string, blobs ...[]byte) []byte {
		b := le.AppendUint32(nil, uint32(len(man)))
		b = append(b, man...)
		b = append(b, byte(len(blobs)))
		for _, bl := range blobs {
			b = append(b, bl...)
		}
		return le.AppendUint32(b, 0)
	}
	blob := func(key string, data []byte, n uint32) []byte {
		b := append([]byte{byte(len(key))}, key...)
		b = append(b, blobRaw)
		return append(le.AppendUint32(b, n), data...)
	}
	if s, err := decodeBody(withBlobs(`{"preprocess":{"a":1}}`, blob("m", []byte{1, 2, 3}, 3)), 2, Limits{}.withDefaults()); err != nil || string(s.Manifest.Preprocess) != `{"a":1,"m":"AQID"}` {
		t.Fatalf("a good blob: %v", err)
	}
	for name, raw := range map[string][]byte{
		"blob without preprocessing": withBlobs(`{}`, blob("m", []byte{1, 2, 3}, 3)),
		"blob repeats a field":       withBlobs(`{"preprocess":{"m":1}}`, blob("m", []byte{1, 2, 3}, 3)),
		"blob past the end":          withBlobs(`{"preprocess":{}}`, blob("m", []byte{1, 2, 3}, 3000)),
		"blob over the limit":        withBlobs(`{"preprocess":{}}`, blob("m", []byte{1, 2, 3}, 1<<30)),
		"blob of unknown encoding":   withBlobs(`{"preprocess":{}}`, append(blob("m", []byte{1, 2, 3}, 3)[:2], append([]byte{7}, blob("m", []byte{1, 2, 3}, 3)[3:]...)...)),
		"coded blob damaged":         withBlobs(`{"preprocess":{}}`, append(append([]byte{1, 'm', blobCoded}, le.AppendUint32(le.AppendUint32(nil, 8), 3)...), 1, 2, 3)),
		// A negative length where int has 32 bits (GOARCH=386).
		"coded blob of 2^32-4 bytes": withBlobs(`{"preprocess":{}}`, append(append([]byte{1, 'm', blobCoded}, le.AppendUint32(le.AppendUint32(nil, 0xFFFFFFFC), 3)...), 1, 2, 3)),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeBody(raw, 2, Limits{}.withDefaults()); !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v, want ErrFormat", err)
			}
		})
	}
	for name, raw := range map[string][]byte{
		"int8 stream as float32": tensor("w", 1, 1, []uint32{4}, layoutCoded, good),
		"unknown mask context":   tensor("w", 3, 1, []uint32{4}, layoutCoded, append([]byte{maskModes << 1}, good[1:]...)),
		"length cut short":       tensor("w", 3, 1, []uint32{4}, layoutCoded, good[:3]),
		"stream cut short":       tensor("w", 3, 1, []uint32{4}, layoutCoded, good[:len(good)-1]),
		"stream length too big":  tensor("w", 3, 1, []uint32{4}, layoutCoded, longer),
		"a byte after it":        tensor("w", 3, 1, []uint32{4}, layoutCoded, append(good[:len(good):len(good)], 0)),
		"codebook too long":      tensor("w", 4, 1, []uint32{4}, layoutCoded, append([]byte{0, 1, 3, 0}, make([]byte, 12)...)),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeBody(v2(raw), 2, Limits{}.withDefaults()); !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v, want ErrFormat", err)
			}
		})
	}
	// And through Read: a signed file whose body says too little.
	var buf bytes.Buffer
	if err := Write(&buf, Manifest{}, nil, key); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(bytes.NewReader(buf.Bytes()), trusted, Limits{}); err != nil {
		t.Fatalf("an empty snapshot: %v", err)
	}
}

// codedInt8 is what follows a coded int8 tensor's layout byte: flags,
// the stream of unit scales for channels and vals (dense).
func codedInt8(flags byte, channels int, vals []int8) []byte {
	le := binary.LittleEndian
	scales := make([]float32, channels)
	for i := range scales {
		scales[i] = 1
	}
	tt := Tensor{Name: "w", Shape: []int{len(vals) / channels, channels}, DType: Int8, I8: vals, Scales: scales}
	stream := encodeValues(&tt, maskGlobal)
	b := le.AppendUint32([]byte{flags}, uint32(len(stream)))
	return append(b, stream...)
}

func TestWriteRefusesBadTensors(t *testing.T) {
	key := testKey(t, 1)
	for name, tt := range map[string]Tensor{
		"no name":         {Shape: []int{1}, DType: Float32, F32: []float32{1}},
		"wrong count":     {Name: "w", Shape: []int{2}, DType: Float32, F32: []float32{1}},
		"int8 no scales":  {Name: "w", Shape: []int{2}, DType: Int8, I8: []int8{1, 2}},
		"unsorted sparse": {Name: "w", Shape: []int{4}, DType: Float32, F32: []float32{1, 2}, Index: []uint32{2, 1}},
		"bad dtype":       {Name: "w", Shape: []int{1}, DType: 7},
	} {
		if err := Write(&bytes.Buffer{}, Manifest{}, []Tensor{tt}, key); err == nil {
			t.Errorf("%s: written", name)
		}
	}
	if err := Write(&bytes.Buffer{}, Manifest{}, nil, nil); err == nil {
		t.Error("written without a key")
	}
}

// FuzzRead: arbitrary bytes never panic, and a file that verifies decodes.
func FuzzRead(f *testing.F) {
	key := testKey(f, 1)
	trusted := NewKeyring(key.Public().(ed25519.PublicKey))
	good := encode(f, key)
	f.Add(good)
	f.Add(good[:headerSize])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Read(bytes.NewReader(b), trusted, Limits{MaxRaw: 1 << 20, MaxBody: 1 << 20})
	})
}

// FuzzDecodeBody fuzzes what lies behind the signature, which FuzzRead's
// inputs cannot reach: the decoder must bound everything itself.
func FuzzDecodeBody(f *testing.F) {
	// The seed is a real body: the signed file's, decompressed.
	file := encode(f, testKey(f, 1))
	dec, err := zstd.NewReader(nil, zstd.WithDecoderDictRaw(manifestDictID, []byte(manifestDict)))
	if err != nil {
		f.Fatal(err)
	}
	raw, err := dec.DecodeAll(file[headerSize:], nil)
	dec.Close()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	coded, _, err := encodeBody(Manifest{}, codedTensors(rand.New(rand.NewPCG(8, 8)))[:6])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(coded)
	f.Add([]byte{2, 0, 0, 0, '{', '}', 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		for v := uint16(oldestVersion); v <= FormatVersion; v++ {
			_, _ = decodeBody(raw, v, Limits{MaxManifest: 1 << 16, MaxTensors: 64}.withDefaults())
		}
	})
}

func BenchmarkReadVerify(b *testing.B) {
	key := testKey(b, 1)
	file := encode(b, key)
	trusted := NewKeyring(key.Public().(ed25519.PublicKey))
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for range b.N {
		if _, err := Read(bytes.NewReader(file), trusted, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := GenerateKey(dir, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(priv); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file %v, mode %v", err, st.Mode())
	}
	if _, _, err := GenerateKey(dir, "ci"); err == nil {
		t.Fatal("overwrote an existing key")
	}
	key, err := LoadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, Manifest{Name: "x"}, nil, key); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(bytes.NewReader(buf.Bytes()), ring, Limits{}); err != nil {
		t.Fatalf("a snapshot signed with the generated key: %v", err)
	}
	if _, err := LoadPublicKey(priv); !errors.Is(err, ErrKeyFile) {
		t.Errorf("a private key read as public: %v", err)
	}
	if _, err := LoadPrivateKey(pub); !errors.Is(err, ErrKeyFile) {
		t.Errorf("a public key read as private: %v", err)
	}
	if _, err := LoadKeyring(t.TempDir()); err == nil {
		t.Error("an empty folder made a keyring")
	}
}

// The name and version are signed: a snapshot checks against where it is
// stored, and a changed version in the manifest breaks the signature.
func TestNameAndVersionAreSigned(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ring := NewKeyring(pub)
	var buf bytes.Buffer
	if err := Write(&buf, Manifest{Name: "digits", Version: 3}, nil, key); err != nil {
		t.Fatal(err)
	}
	s, err := Read(bytes.NewReader(buf.Bytes()), ring, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckPlace("digits", 3); err != nil {
		t.Errorf("in its place: %v", err)
	}
	for _, tt := range []struct {
		name string
		seq  uint64
		want string
	}{
		{"digits", 7, "signed as digits@3, stored as digits@7"},
		{"evilname", 3, "signed as digits@3, stored as evilname@3"},
		{"a\x1b]0;x\x07", 3, `stored as a\x1b]0;x\a@3`},
	} {
		if err := s.CheckPlace(tt.name, tt.seq); !errors.Is(err, ErrMisplaced) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("stored as %q@%d: %v, want ErrMisplaced saying %q", tt.name, tt.seq, err, tt.want)
		}
	}
	old := &Snapshot{Manifest: Manifest{Name: "digits"}}
	if err := old.CheckPlace("digits", 1); !errors.Is(err, ErrMisplaced) || !strings.Contains(err.Error(), "names no version") {
		t.Errorf("a snapshot without a version: %v", err)
	}
}

// Shared tensors round-trip at every code width, dense and sparse, and
// codes beyond their codebook or widths out of range are refused on both
// sides.
func TestSharedTensors(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	key := testKey(t, 7)
	m, _ := testSnapshot()
	for bits := uint8(1); bits <= MaxSharedBits; bits++ {
		k := 1 << bits
		book := make([]float32, k)
		for i := range book {
			book[i] = float32(i) - float32(k)/2
		}
		dense := make([]uint8, 37*11)
		for i := range dense {
			dense[i] = uint8(rng.IntN(k))
		}
		ts := []Tensor{
			{Name: "w", Shape: []int{37, 11}, DType: Shared, Codes: dense, Codebook: book, Bits: bits},
			{Name: "s", Shape: []int{5, 7}, DType: Shared, Codes: []uint8{uint8(k - 1), 0, uint8(k / 2)}, Codebook: book, Bits: bits, Index: []uint32{1, 20, 34}},
		}
		var buf bytes.Buffer
		if err := Write(&buf, m, ts, key); err != nil {
			t.Fatalf("%d bits: %v", bits, err)
		}
		s, err := Read(bytes.NewReader(buf.Bytes()), NewKeyring(key.Public().(ed25519.PublicKey)), Limits{})
		if err != nil {
			t.Fatalf("%d bits: %v", bits, err)
		}
		for i := range ts {
			got := s.Tensors[i]
			if !reflect.DeepEqual(got.Codes, ts[i].Codes) || !reflect.DeepEqual(got.Codebook, ts[i].Codebook) || got.Bits != bits || !reflect.DeepEqual(got.Index, ts[i].Index) {
				t.Fatalf("%d bits: tensor %s read back as %+v", bits, ts[i].Name, got)
			}
		}
	}
	for name, bad := range map[string]Tensor{
		"code beyond the codebook": {Name: "w", Shape: []int{2}, DType: Shared, Codes: []uint8{0, 2}, Codebook: []float32{1, 2}, Bits: 1},
		"codebook too long":        {Name: "w", Shape: []int{2}, DType: Shared, Codes: []uint8{0, 1}, Codebook: []float32{1, 2, 3}, Bits: 1},
		"no codebook":              {Name: "w", Shape: []int{2}, DType: Shared, Codes: []uint8{0, 1}, Bits: 1},
		"9 bits":                   {Name: "w", Shape: []int{2}, DType: Shared, Codes: []uint8{0, 1}, Codebook: []float32{1, 2}, Bits: 9},
		"codebook on int8":         {Name: "w", Shape: []int{2}, DType: Int8, I8: []int8{1, 2}, Scales: []float32{1, 1}, Codebook: []float32{1}},
	} {
		if err := Write(&bytes.Buffer{}, m, []Tensor{bad}, key); err == nil {
			t.Errorf("Write took a tensor with %s", name)
		}
	}
}

func TestPackedCodes(t *testing.T) {
	for bits := uint8(1); bits <= 8; bits++ {
		codes := make([]uint8, 101)
		for i := range codes {
			codes[i] = uint8((i*7 + 3) % (1 << bits))
		}
		packed := appendCodes(nil, codes, bits)
		if len(packed) != (len(codes)*int(bits)+7)/8 {
			t.Errorf("%d bits: %d bytes for %d codes", bits, len(packed), len(codes))
		}
		if got := readCodes(packed, len(codes), bits); !reflect.DeepEqual(got, codes) {
			t.Errorf("%d bits: codes read back as %v", bits, got[:10])
		}
	}
}

// Base64 strings of the preprocessing spec travel as bytes and come back
// as the same JSON values; the rest of the spec, and specs that are not
// objects, are untouched.
func TestPreprocessBlobs(t *testing.T) {
	key := testKey(t, 1)
	stats := make([]byte, 256)
	for i := range stats {
		stats[i] = byte(i * 7)
	}
	b64 := base64.StdEncoding.EncodeToString(stats)
	for _, pre := range []string{
		`{"features":64,"mean32":"` + b64 + `","std32":"` + b64[:40] + `","names":["a<b","AAAAAAAAAAAAAAAAAAAA"],"clip":5,"short":"AAAA"}`,
		`{"features":3}`,
		`[1,2,3]`,
		`"` + b64 + `"`,
		``,
	} {
		s, _ := writeRead(t, key, Manifest{Name: "x", Version: 1, Preprocess: json.RawMessage(pre)}, nil)
		var want, got any
		if pre != "" {
			if err := json.Unmarshal([]byte(pre), &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(s.Manifest.Preprocess, &got); err != nil {
				t.Fatalf("%.40s: preprocessing read back as %s: %v", pre, s.Manifest.Preprocess, err)
			}
		} else if len(s.Manifest.Preprocess) != 0 {
			t.Fatalf("no preprocessing read back as %s", s.Manifest.Preprocess)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%.40s: preprocessing read back as %s", pre, s.Manifest.Preprocess)
		}
	}
	if _, blobs, _ := liftBlobs(json.RawMessage(`{"m":"` + b64 + `","n":"AAAAAAAAAAAAAAAAAAAA","s":"AAAA","x":1}`)); len(blobs) != 2 || blobs[0].key != "m" || blobs[1].key != "n" {
		t.Errorf("blobs %v, want m and n", blobs)
	}
}
