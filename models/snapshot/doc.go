// Package snapshot reads and writes model snapshots: one file holding a
// model's manifest (descriptor, labels, preprocessing statistics, metrics,
// lineage) and its tensors, compressed with zstd, with a SHA-256 digest and
// an ed25519 signature.
//
// The file is a fixed header followed by the compressed body:
//
//	magic     8 bytes  "MUONSNAP"
//	version   uint16   FormatVersion
//	reserved  uint16   0
//	key id    8 bytes  KeyIDOf(signer's public key)
//	body size uint64   length of the compressed body
//	raw size  uint64   length of the body once decompressed
//	digest    32 bytes SHA-256 of the header before the digest, then the body
//	signature 64 bytes ed25519 signature of the digest
//	body      zstd frames
//
// All integers are little-endian. Read checks the header, the length, the
// digest, the signer and the signature before it decompresses a byte, then
// decompresses into a buffer of exactly the declared raw size (bounded by
// Limits) and decodes the body with explicit bounds on every length. The
// manifest is JSON, decoded only once the signature has proven it comes
// from a trusted signer.
//
// The body is the manifest (uint32 length, JSON), then the tensors (uint32
// count; each its name, value type, shape and layout). Version 1 stores a
// tensor's values plainly, after a bitmap of its kept positions if it is
// sparse. Version 2 adds the coded layout: a tensor's mask and values (and
// an int8 tensor's scales, a shared one's codebook) range-coded as one
// stream under adaptive models (coded.go, coder.go), which the writer
// takes when it is shorter. It also moves the preprocessing's base64
// strings out of the manifest into blobs of bytes between the manifest and
// the tensors, range-coded as 4-byte values when that is shorter
// (blobs.go), and compresses the manifest and the rest as two zstd frames,
// which decompress as one body. Version 3 (FormatVersion) writes a leaner
// manifest (the class names once, in the model's descriptor, and no metric
// a head does not measure: manifest.go) and compresses its frame with a
// dictionary of the manifest's field names (dict.go): 242 bytes fewer for
// the digits MLP's 3-bit snapshot, whose manifest took 666. Read accepts
// versions 1 to 3; muon before a version refuses its files as an unknown
// version. Version 2 changed several times on 2026-12-04 before it
// shipped, and only files of its final writer (testdata/v2.snap) read as
// version 2.
package snapshot
