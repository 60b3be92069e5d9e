package snapshot

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/muonml/muon/internal/printable"
	"github.com/muonml/muon/models"
)

// FormatVersion is the version this package writes. Version 2 added the
// coded tensor layout (int8 and shared values range-coded with their
// mask, coded.go); version 3 a leaner manifest (labels once, no zero
// metrics; manifest.go) compressed with a dictionary of its field names
// (dict.go). muon before a version refuses its files as an unknown
// version. This package reads versions 1 to 3.
const FormatVersion = 3

// oldestVersion is the oldest format version Read accepts.
const oldestVersion = 1

const (
	magic      = "MUONSNAP"
	headerSize = 8 + 2 + 2 + 8 + 8 + 8 + sha256.Size + ed25519.SignatureSize
	digestAt   = 8 + 2 + 2 + 8 + 8 + 8
)

// Errors; every error Read returns wraps exactly one of them.
var (
	ErrNotSnapshot   = errors.New("snapshot: not a muon snapshot (bad magic)")
	ErrVersion       = errors.New("snapshot: unknown format version")
	ErrTruncated     = errors.New("snapshot: truncated")
	ErrTooLarge      = errors.New("snapshot: larger than the limits allow")
	ErrDigest        = errors.New("snapshot: digest mismatch (the file was altered or damaged)")
	ErrUnsigned      = errors.New("snapshot: unsigned")
	ErrUnknownSigner = errors.New("snapshot: signed by a key that is not trusted")
	ErrSignature     = errors.New("snapshot: bad signature")
	// ErrMisplaced: a verified snapshot stored under a name or version
	// other than the ones it was signed with — an old model replayed as a
	// new version.
	ErrMisplaced = errors.New("snapshot: stored under another name or version than it was signed with")
	ErrFormat    = errors.New("snapshot: malformed body")
)

// Limits bound what Read accepts.
type Limits struct {
	// MaxBody is the largest compressed body. Default 256 MiB.
	MaxBody int64
	// MaxRaw is the largest decompressed body. Default 1 GiB.
	MaxRaw int64
	// MaxManifest is the largest manifest. Default 4 MiB.
	MaxManifest int
	// MaxTensors is the most tensors. Default 4096.
	MaxTensors int
	// MaxParams is the most positions (stored or pruned) over all
	// tensors. Default models.MaxParams (2^27), the most parameters a
	// model may have, so that every model muon builds loads. A coded
	// tensor can pack thousands of positions in a byte, so this, not
	// MaxRaw, bounds what decoding allocates and how long it runs: at
	// the default, a sparse float32 tensor of every position decodes to
	// 1.5 GiB (index, values and mask models) in at most 33 decisions a
	// position, as large a model as muon builds.
	MaxParams int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBody == 0 {
		l.MaxBody = 256 << 20
	}
	if l.MaxRaw == 0 {
		l.MaxRaw = 1 << 30
	}
	if l.MaxManifest == 0 {
		l.MaxManifest = 4 << 20
	}
	if l.MaxTensors == 0 {
		l.MaxTensors = 4096
	}
	if l.MaxParams == 0 {
		l.MaxParams = models.MaxParams
	}
	return l
}

// Manifest describes a snapshot's model.
type Manifest struct {
	// Name is the model's name, e.g. the job's, and Version its sequence
	// number in the store it is published to. Both are signed with the
	// rest, so a store refuses a file copied or renamed to another name or
	// version (CheckPlace).
	Name    string      `json:"name"`
	Version uint64      `json:"version"`
	Model   models.Desc `json:"model"`
	// Labels are the class names in class order; empty for regression.
	Labels []string `json:"labels,omitempty"`
	// Preprocess is the preprocessing spec (analyze.Spec as JSON) that
	// standardizes a row before the model sees it.
	Preprocess json.RawMessage `json:"preprocess,omitempty"`
	// Metrics are named measurements, e.g. "float" and "compressed" on
	// the validation and test sets.
	Metrics map[string]models.Metrics `json:"metrics,omitempty"`
	// Compression says what was done to the tensors.
	Compression Compression `json:"compression"`
	Lineage     Lineage     `json:"lineage"`
}

// Compression records how a snapshot's tensors were compressed.
type Compression struct {
	// Sparsity is the fraction of weights pruned to zero.
	Sparsity float64 `json:"sparsity,omitempty"`
	// Weights is the storage of weight tensors: float32, float16 or int8.
	Weights string `json:"weights"`
}

// Lineage records where a model came from.
type Lineage struct {
	Sources     []Source  `json:"sources,omitempty"`
	SpecHash    string    `json:"spec_hash,omitempty"`
	MuonVersion string    `json:"muon_version,omitempty"`
	Created     time.Time `json:"created"`
	// Window is the end of the event-time window a train job on a stream
	// trained this model on, and Base the window end of the model it
	// started from (zero: the job's initial model).
	Window time.Time `json:"window,omitzero"`
	Base   time.Time `json:"base,omitzero"`
}

// Source is data a model was trained on: Kafka offset ranges or files.
type Source struct {
	Kind string `json:"kind"` // kafka or parquet
	// Use is what the job did with the data: train (training and
	// validation rows) or test.
	Use       string   `json:"use,omitempty"`
	Topic     string   `json:"topic,omitempty"`
	Partition int      `json:"partition,omitempty"`
	From      int64    `json:"from,omitempty"` // first offset
	To        int64    `json:"to,omitempty"`   // one past the last offset
	Files     []string `json:"files,omitempty"`
}

// DType is how a tensor's values are stored.
type DType uint8

// The storage types.
const (
	Float32 DType = 1
	Float16 DType = 2
	Int8    DType = 3
	// Shared weights: each stored value is a code, Bits bits, into the
	// tensor's Codebook of float32 values (weight sharing: k-means
	// centroids).
	Shared DType = 4
)

// MaxSharedBits is the widest code of a Shared tensor.
const MaxSharedBits = 8

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Float16:
		return "float16"
	case Int8:
		return "int8"
	case Shared:
		return "shared"
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// size is the bytes of one value; 0 for Shared, whose codes are packed
// bits.
func (d DType) size() int {
	switch d {
	case Float32:
		return 4
	case Float16:
		return 2
	case Int8:
		return 1
	}
	return 0
}

func (d DType) known() bool { return d.size() > 0 || d == Shared }

// Tensor is one stored tensor, shaped as models.Tensor (the output
// channel is the last dimension and varies fastest). Exactly the value
// slice of its DType is set. Int8 tensors carry one scale per output
// channel: value = int8 × Scales[position mod channels]. A sparse tensor lists the flat
// positions of its stored values in Index (ascending); the others are 0.
type Tensor struct {
	Name   string
	Shape  []int
	DType  DType
	F32    []float32
	F16    []uint16
	I8     []int8
	Scales []float32
	Index  []uint32
	// Codes index Codebook (Shared): value = Codebook[code]. Bits is how
	// many bits a code takes in the file, 1 to MaxSharedBits; the
	// codebook has at most 1<<Bits entries.
	Codes    []uint8
	Codebook []float32
	Bits     uint8
}

// Len is the number of elements the shape describes.
func (t *Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Channels is the number of output channels: the last dimension.
func (t *Tensor) Channels() int { return t.Shape[len(t.Shape)-1] }

// Sparse reports whether t stores only some positions.
func (t *Tensor) Sparse() bool { return t.Index != nil }

func (t *Tensor) stored() int {
	switch t.DType {
	case Float32:
		return len(t.F32)
	case Float16:
		return len(t.F16)
	case Int8:
		return len(t.I8)
	case Shared:
		return len(t.Codes)
	}
	return 0
}

func (t *Tensor) check() error {
	if t.Name == "" || len(t.Name) > math.MaxUint16 {
		return fmt.Errorf("tensor name %q: empty or too long", t.Name)
	}
	if len(t.Shape) == 0 || len(t.Shape) > 8 {
		return fmt.Errorf("tensor %s: rank %d, want 1 to 8", t.Name, len(t.Shape))
	}
	n := 1
	for _, d := range t.Shape {
		if d < 1 || d > models.MaxParams || n > models.MaxParams/d {
			return fmt.Errorf("tensor %s: shape %v is out of range", t.Name, t.Shape)
		}
		n *= d
	}
	if !t.DType.known() {
		return fmt.Errorf("tensor %s: %s", t.Name, t.DType)
	}
	if (t.DType == Shared) != (t.Codebook != nil) {
		return fmt.Errorf("tensor %s: a codebook for a %s tensor", t.Name, t.DType)
	}
	if t.DType == Shared {
		if t.Bits < 1 || t.Bits > MaxSharedBits || len(t.Codebook) < 1 || len(t.Codebook) > 1<<t.Bits {
			return fmt.Errorf("tensor %s: a codebook of %d values for %d-bit codes", t.Name, len(t.Codebook), t.Bits)
		}
		for _, c := range t.Codes {
			if int(c) >= len(t.Codebook) {
				return fmt.Errorf("tensor %s: code %d of a codebook of %d", t.Name, c, len(t.Codebook))
			}
		}
	}
	want := n
	if t.Sparse() {
		want = len(t.Index)
		for i, at := range t.Index {
			if int(at) >= n || (i > 0 && at <= t.Index[i-1]) {
				return fmt.Errorf("tensor %s: sparse index %d (%d) is out of order or range", t.Name, i, at)
			}
		}
	}
	if t.stored() != want {
		return fmt.Errorf("tensor %s: %d %s values for %d positions", t.Name, t.stored(), t.DType, want)
	}
	if (t.DType == Int8) != (t.Scales != nil) || (t.DType == Int8 && len(t.Scales) != t.Channels()) {
		return fmt.Errorf("tensor %s: %d scales for a %s tensor of %d channels", t.Name, len(t.Scales), t.DType, t.Channels())
	}
	return nil
}

// KeyID names a public key: the first 8 bytes of its SHA-256.
type KeyID [8]byte

func (k KeyID) String() string { return fmt.Sprintf("%x", k[:]) }

// KeyIDOf is the id of a public key.
func KeyIDOf(pub ed25519.PublicKey) KeyID {
	sum := sha256.Sum256(pub)
	var id KeyID
	copy(id[:], sum[:8])
	return id
}

// Keyring holds the trusted public keys.
type Keyring map[KeyID]ed25519.PublicKey

// NewKeyring trusts the given keys.
func NewKeyring(keys ...ed25519.PublicKey) Keyring {
	k := Keyring{}
	for _, pub := range keys {
		k[KeyIDOf(pub)] = pub
	}
	return k
}

// Write encodes a snapshot of m and tensors, signed with key, to w.
func Write(w io.Writer, m Manifest, tensors []Tensor, key ed25519.PrivateKey) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("snapshot: signing key of %d bytes, want an ed25519 private key", len(key))
	}
	raw, manifestEnd, err := encodeBody(m, tensors)
	if err != nil {
		return err
	}
	// No frame checksums: the SHA-256 digest covers every byte.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderCRC(false))
	if err != nil {
		return err
	}
	defer enc.Close()
	dictEnc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderCRC(false),
		zstd.WithEncoderDictRaw(manifestDictID, []byte(manifestDict)))
	if err != nil {
		return err
	}
	defer dictEnc.Close()
	// Two frames, which decompress as one: the manifest's text, with the
	// dictionary of its field names, then the binary rest. In one frame
	// the text and the binary share zstd's literal tables, and the digits
	// MLP's 3-bit snapshot took 400 bytes more.
	body := dictEnc.EncodeAll(raw[:manifestEnd], nil)
	body = enc.EncodeAll(raw[manifestEnd:], body)

	le := binary.LittleEndian
	head := make([]byte, headerSize)
	copy(head, magic)
	le.PutUint16(head[8:], FormatVersion)
	id := KeyIDOf(key.Public().(ed25519.PublicKey))
	copy(head[12:20], id[:])
	le.PutUint64(head[20:], uint64(len(body)))
	le.PutUint64(head[28:], uint64(len(raw)))
	digest := digestOf(head[:digestAt], body)
	copy(head[digestAt:], digest[:])
	copy(head[digestAt+sha256.Size:], ed25519.Sign(key, digest[:]))
	if _, err := w.Write(head); err != nil {
		return err
	}
	_, err = w.Write(body)
	return err
}

// Tensor layouts in a body.
const (
	layoutDense  = 0 // every position's value
	layoutBitmap = 1 // a bitmap of the stored positions, then their values
	layoutCoded  = 2 // version 2: mask and values range-coded (coded.go)
)

// encodeBody is a snapshot's body before zstd, in the format version
// FormatVersion, and where its manifest ends.
func encodeBody(m Manifest, tensors []Tensor) (raw []byte, manifestEnd int, err error) {
	pre, blobs, err := liftBlobs(m.Preprocess)
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: manifest: %w", err)
	}
	m.Preprocess = pre
	man, err := marshalManifest(m)
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: manifest: %w", err)
	}
	le := binary.LittleEndian
	raw = le.AppendUint32(nil, uint32(len(man)))
	raw = append(raw, man...)
	manifestEnd = len(raw)
	raw = append(raw, byte(len(blobs)))
	for _, b := range blobs {
		raw = append(raw, byte(len(b.key)))
		raw = append(raw, b.key...)
		raw = appendBlob(raw, b.data)
	}
	raw = le.AppendUint32(raw, uint32(len(tensors)))
	for i := range tensors {
		t := &tensors[i]
		if err := t.check(); err != nil {
			return nil, 0, fmt.Errorf("snapshot: %w", err)
		}
		raw = le.AppendUint16(raw, uint16(len(t.Name)))
		raw = append(raw, t.Name...)
		raw = append(raw, byte(t.DType), byte(len(t.Shape)))
		for _, d := range t.Shape {
			raw = le.AppendUint32(raw, uint32(d))
		}
		raw = appendTensor(raw, t)
	}
	return raw, manifestEnd, nil
}

// appendTensor appends t's layout and values: coded if that is shorter,
// else as version 1 wrote them.
func appendTensor(dst []byte, t *Tensor) []byte {
	le := binary.LittleEndian
	var plain []byte
	if t.Sparse() {
		// A bitmap of the stored positions: one bit a position.
		plain = append(plain, layoutBitmap)
		bitmap := make([]byte, (t.Len()+7)/8)
		for _, at := range t.Index {
			bitmap[at/8] |= 1 << (at % 8)
		}
		plain = append(plain, bitmap...)
	} else {
		plain = append(plain, layoutDense)
	}
	for _, s := range t.Scales {
		plain = le.AppendUint32(plain, math.Float32bits(s))
	}
	switch t.DType {
	case Float32:
		for _, v := range t.F32 {
			plain = le.AppendUint32(plain, math.Float32bits(v))
		}
	case Float16:
		for _, v := range t.F16 {
			plain = le.AppendUint16(plain, v)
		}
	case Int8:
		for _, v := range t.I8 {
			plain = append(plain, byte(v))
		}
	case Shared:
		plain = appendCodebook(plain, t)
		plain = appendCodes(plain, t.Codes, t.Bits)
	}
	var best []byte
	mode := uint8(maskGlobal)
	for m := range uint8(maskModes) {
		if !t.Sparse() && m > maskGlobal {
			break
		}
		if c := encodeValues(t, m); best == nil || len(c) < len(best) {
			best, mode = c, m
		}
	}
	flags := mode << 1
	if t.Sparse() {
		flags |= 1
	}
	coded := []byte{layoutCoded, flags}
	if t.DType == Shared {
		// The codebook's values are in the stream.
		coded = append(coded, t.Bits)
		coded = le.AppendUint16(coded, uint16(len(t.Codebook)))
	}
	coded = le.AppendUint32(coded, uint32(len(best)))
	coded = append(coded, best...)
	if len(coded) < len(plain) {
		return append(dst, coded...)
	}
	return append(dst, plain...)
}

// appendCodebook appends a shared tensor's code width and codebook.
func appendCodebook(dst []byte, t *Tensor) []byte {
	dst = append(dst, t.Bits)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(t.Codebook)))
	for _, v := range t.Codebook {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst
}

func digestOf(head, body []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(head)
	h.Write(body)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// Snapshot is a verified, decoded snapshot.
type Snapshot struct {
	Manifest Manifest
	Tensors  []Tensor
	// Signer is the key that signed it; Digest the file's SHA-256 digest.
	Signer KeyID
	Digest [sha256.Size]byte
	// Size is the file's size; RawSize the body's size decompressed.
	Size, RawSize int64
}

// CheckPlace reports whether a verified snapshot was signed as version seq
// of name, where its store keeps it; the error wraps ErrMisplaced.
func (s *Snapshot) CheckPlace(name string, seq uint64) error {
	if s.Manifest.Version == 0 {
		return fmt.Errorf("%w: it names no version (written before versions were signed; publish it again), stored as %s@%d",
			ErrMisplaced, printable.String(name, 128), seq)
	}
	if s.Manifest.Name != name || s.Manifest.Version != seq {
		return fmt.Errorf("%w: signed as %s@%d, stored as %s@%d", ErrMisplaced,
			printable.String(s.Manifest.Name, 128), s.Manifest.Version, printable.String(name, 128), seq)
	}
	return nil
}

// Header is what a file's header says, read without verifying anything.
type Header struct {
	Version          uint16
	Signer           KeyID
	BodySize, RawLen uint64
	Signed           bool
}

// Read verifies and decodes a snapshot: the header, the length, the
// digest, the signer (one of trusted) and the signature, and only then
// the body, within l.
func Read(r io.Reader, trusted Keyring, l Limits) (*Snapshot, error) {
	l = l.withDefaults()
	head := make([]byte, headerSize)
	if n, err := io.ReadFull(r, head); err != nil {
		if n >= len(magic) && string(head[:len(magic)]) != magic {
			return nil, ErrNotSnapshot
		}
		return nil, fmt.Errorf("%w: %d of the header's %d bytes", ErrTruncated, n, headerSize)
	}
	h, err := parseHeader(head)
	if err != nil {
		return nil, err
	}
	if h.BodySize > uint64(l.MaxBody) || h.RawLen > uint64(l.MaxRaw) {
		return nil, fmt.Errorf("%w: body %d bytes (limit %d), %d decompressed (limit %d)", ErrTooLarge, h.BodySize, l.MaxBody, h.RawLen, l.MaxRaw)
	}
	body := make([]byte, h.BodySize)
	if n, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: %d of the body's %d bytes", ErrTruncated, n, h.BodySize)
	}
	if n, _ := io.CopyN(io.Discard, r, 1); n > 0 {
		return nil, fmt.Errorf("%w: bytes after the body", ErrDigest)
	}
	digest := digestOf(head[:digestAt], body)
	if !bytes.Equal(digest[:], head[digestAt:digestAt+sha256.Size]) {
		return nil, ErrDigest
	}
	if !h.Signed {
		return nil, ErrUnsigned
	}
	pub, ok := trusted[h.Signer]
	if !ok {
		return nil, fmt.Errorf("%w: key %s", ErrUnknownSigner, h.Signer)
	}
	if !ed25519.Verify(pub, digest[:], head[digestAt+sha256.Size:]) {
		return nil, fmt.Errorf("%w: key %s", ErrSignature, h.Signer)
	}

	opts := []zstd.DOption{zstd.WithDecoderMaxMemory(uint64(l.MaxRaw)), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(uint64(min(l.MaxRaw, 1<<29)))}
	if h.Version >= 3 {
		opts = append(opts, zstd.WithDecoderDictRaw(manifestDictID, []byte(manifestDict)))
	}
	dec, err := zstd.NewReader(nil, opts...)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(body, make([]byte, 0, h.RawLen))
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %v", ErrFormat, err)
	}
	if uint64(len(raw)) != h.RawLen {
		return nil, fmt.Errorf("%w: body is %d bytes decompressed, the header says %d", ErrFormat, len(raw), h.RawLen)
	}
	snap, err := decodeBody(raw, h.Version, l)
	if err != nil {
		return nil, err
	}
	snap.Signer, snap.Digest = h.Signer, digest
	snap.Size, snap.RawSize = int64(headerSize)+int64(h.BodySize), int64(h.RawLen)
	return snap, nil
}

// ReadHeader reads what a file's header says, verifying nothing: for
// tools that show why a file is refused.
func ReadHeader(r io.Reader) (Header, error) {
	head := make([]byte, headerSize)
	if n, err := io.ReadFull(r, head); err != nil {
		return Header{}, fmt.Errorf("%w: %d of the header's %d bytes", ErrTruncated, n, headerSize)
	}
	return parseHeader(head)
}

func parseHeader(head []byte) (Header, error) {
	if string(head[:len(magic)]) != magic {
		return Header{}, ErrNotSnapshot
	}
	le := binary.LittleEndian
	h := Header{Version: le.Uint16(head[8:]), BodySize: le.Uint64(head[20:]), RawLen: le.Uint64(head[28:])}
	if h.Version < oldestVersion || h.Version > FormatVersion {
		return h, fmt.Errorf("%w %d (this muon reads versions %d to %d; a newer muon wrote it?)", ErrVersion, h.Version, oldestVersion, FormatVersion)
	}
	copy(h.Signer[:], head[12:20])
	for _, b := range head[digestAt+sha256.Size:] {
		if b != 0 {
			h.Signed = true
			break
		}
	}
	return h, nil
}

// body is a cursor over a decompressed body that refuses to read past its
// end.
type body struct {
	b   []byte
	err error
}

func (c *body) take(n int) []byte {
	if c.err != nil {
		return nil
	}
	if n < 0 || n > len(c.b) {
		c.err = fmt.Errorf("%w: %d bytes wanted, %d left", ErrFormat, n, len(c.b))
		return nil
	}
	out := c.b[:n]
	c.b = c.b[n:]
	return out
}

func (c *body) u8() uint8 {
	b := c.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (c *body) u16() uint16 {
	b := c.take(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (c *body) u32() uint32 {
	b := c.take(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func decodeBody(raw []byte, version uint16, l Limits) (*Snapshot, error) {
	c := &body{b: raw}
	mlen := int(c.u32())
	if c.err == nil && mlen > l.MaxManifest {
		return nil, fmt.Errorf("%w: manifest of %d bytes (limit %d)", ErrTooLarge, mlen, l.MaxManifest)
	}
	man := c.take(mlen)
	if c.err != nil {
		return nil, c.err
	}
	snap := &Snapshot{}
	if err := unmarshalManifest(man, version, &snap.Manifest); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrFormat, err)
	}
	if version >= 2 {
		blobs := make([]blob, c.u8())
		// Their total within the manifest's limit as they are read, not
		// once all are: 255 blobs of the limit each are 1 GiB.
		left := l.MaxManifest
		for i := range blobs {
			blobs[i].key = string(c.take(int(c.u8())))
			var err error
			if blobs[i].data, err = c.blob(left); err != nil {
				return nil, fmt.Errorf("%w: manifest blob %q: %v", ErrFormat, printable.String(blobs[i].key, 64), err)
			}
			left -= len(blobs[i].data)
		}
		if c.err != nil {
			return nil, c.err
		}
		pre, err := restoreBlobs(snap.Manifest.Preprocess, blobs, l.MaxManifest)
		if err != nil {
			return nil, fmt.Errorf("%w: manifest: %v", ErrFormat, err)
		}
		snap.Manifest.Preprocess = pre
	}
	count := int(c.u32())
	if c.err == nil && (count < 0 || count > l.MaxTensors) {
		return nil, fmt.Errorf("%w: %d tensors (limit %d)", ErrTooLarge, uint32(count), l.MaxTensors)
	}
	params := 0 // positions of the tensors so far
	for i := 0; i < count && c.err == nil; i++ {
		var t Tensor
		t.Name = string(c.take(int(c.u16())))
		t.DType = DType(c.u8())
		rank := int(c.u8())
		if c.err == nil && (rank < 1 || rank > 8) {
			return nil, fmt.Errorf("%w: tensor %d (%s): rank %d", ErrFormat, i, t.Name, rank)
		}
		n := 1
		for range rank {
			d := int(c.u32())
			if c.err == nil && (d < 1 || d > models.MaxParams || n > models.MaxParams/d) {
				return nil, fmt.Errorf("%w: tensor %s: dimension %d out of range", ErrFormat, t.Name, d)
			}
			t.Shape = append(t.Shape, d)
			n *= d
		}
		if c.err != nil {
			break
		}
		if n > l.MaxParams-params {
			return nil, fmt.Errorf("%w: tensor %s: %d positions, %d with the tensors before it (limit %d over all tensors, Limits.MaxParams)",
				ErrTooLarge, printable.String(t.Name, 64), n, int64(params)+int64(n), l.MaxParams)
		}
		params += n
		if !t.DType.known() {
			return nil, fmt.Errorf("%w: tensor %s: unknown value type %d", ErrFormat, t.Name, uint8(t.DType))
		}
		layout := c.u8()
		if c.err == nil && layout == layoutCoded && version >= 2 {
			if err := decodeCoded(c, &t); err != nil {
				return nil, fmt.Errorf("%w: tensor %s: %v", ErrFormat, t.Name, err)
			}
			snap.Tensors = append(snap.Tensors, t)
			continue
		}
		stored := n
		switch layout {
		case layoutDense:
		case layoutBitmap:
			bitmap := c.take((n + 7) / 8)
			if c.err != nil {
				break
			}
			if n%8 != 0 && bitmap[len(bitmap)-1]>>(n%8) != 0 {
				return nil, fmt.Errorf("%w: tensor %s: bitmap marks positions past the end", ErrFormat, t.Name)
			}
			for k, b := range bitmap {
				for ; b != 0; b &= b - 1 {
					t.Index = append(t.Index, uint32(8*k+bits.TrailingZeros8(b)))
				}
			}
			if t.Index == nil {
				t.Index = []uint32{}
			}
			stored = len(t.Index)
		default:
			return nil, fmt.Errorf("%w: tensor %s: unknown layout %d in a version %d body", ErrFormat, t.Name, layout, version)
		}
		if c.err != nil {
			break
		}
		if t.DType == Int8 {
			t.Scales = c.f32s(t.Channels())
		}
		if t.DType == Shared {
			if err := c.codebook(&t); err != nil {
				return nil, fmt.Errorf("%w: tensor %s: %v", ErrFormat, t.Name, err)
			}
			packed := c.take((stored*int(t.Bits) + 7) / 8)
			if c.err != nil {
				break
			}
			t.Codes = readCodes(packed, stored, t.Bits)
			for _, code := range t.Codes {
				if int(code) >= len(t.Codebook) {
					return nil, fmt.Errorf("%w: tensor %s: code %d of a codebook of %d", ErrFormat, t.Name, code, len(t.Codebook))
				}
			}
			snap.Tensors = append(snap.Tensors, t)
			continue
		}
		vals := c.take(t.DType.size() * stored)
		if c.err != nil {
			break
		}
		switch t.DType {
		case Float32:
			t.F32 = make([]float32, stored)
			for k := range t.F32 {
				t.F32[k] = math.Float32frombits(binary.LittleEndian.Uint32(vals[4*k:]))
			}
		case Float16:
			t.F16 = make([]uint16, stored)
			for k := range t.F16 {
				t.F16[k] = binary.LittleEndian.Uint16(vals[2*k:])
			}
		case Int8:
			t.I8 = make([]int8, stored)
			for k := range t.I8 {
				t.I8[k] = int8(vals[k])
			}
		}
		snap.Tensors = append(snap.Tensors, t)
	}
	if c.err != nil {
		return nil, c.err
	}
	if len(c.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last tensor", ErrFormat, len(c.b))
	}
	return snap, nil
}

// decodeCoded reads a tensor of the coded layout, after its layout byte.
func decodeCoded(c *body, t *Tensor) error {
	flags := c.u8()
	sparse, mode := flags&1 == 1, flags>>1
	if c.err == nil && mode >= maskModes {
		return fmt.Errorf("unknown mask context %d", mode)
	}
	if t.DType == Shared {
		t.Bits = c.u8()
		k := int(c.u16())
		if c.err == nil && (t.Bits < 1 || t.Bits > MaxSharedBits || k < 1 || k > 1<<t.Bits) {
			return fmt.Errorf("a codebook of %d values for %d-bit codes", k, t.Bits)
		}
		t.Codebook = make([]float32, k)
	}
	coded := c.take(int(c.u32()))
	if c.err != nil {
		return c.err
	}
	return decodeValues(t, coded, sparse, mode)
}

// f32s reads n float32 values.
func (c *body) f32s(n int) []float32 {
	b := c.take(4 * n)
	if b == nil {
		return nil
	}
	out := make([]float32, n)
	for k := range out {
		out[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*k:]))
	}
	return out
}

// codebook reads a shared tensor's code width and codebook.
func (c *body) codebook(t *Tensor) error {
	t.Bits = c.u8()
	k := int(c.u16())
	if c.err == nil && (t.Bits < 1 || t.Bits > MaxSharedBits || k < 1 || k > 1<<t.Bits) {
		return fmt.Errorf("a codebook of %d values for %d-bit codes", k, t.Bits)
	}
	t.Codebook = c.f32s(k)
	return c.err
}

// appendCodes packs codes of bits bits each, least significant bit first.
func appendCodes(dst []byte, codes []uint8, bits uint8) []byte {
	var acc uint32
	n := uint8(0)
	for _, c := range codes {
		acc |= uint32(c) << n
		n += bits
		for n >= 8 {
			dst = append(dst, byte(acc))
			acc >>= 8
			n -= 8
		}
	}
	if n > 0 {
		dst = append(dst, byte(acc))
	}
	return dst
}

// readCodes unpacks count codes of bits bits each from packed.
func readCodes(packed []byte, count int, bits uint8) []uint8 {
	out := make([]uint8, count)
	var acc uint32
	n := uint8(0)
	p := 0
	mask := uint32(1)<<bits - 1
	for i := range out {
		for n < bits {
			acc |= uint32(packed[p]) << n
			p++
			n += 8
		}
		out[i] = uint8(acc & mask)
		acc >>= bits
		n -= bits
	}
	return out
}
