// Package wire is the compact binary encoding muon's Beam coders share:
// varints, length-prefixed strings and byte slices, and times, appended to
// a buffer and read back with every length checked against the bytes that
// are there. Decoding never panics and never allocates more than its input
// justifies; the first problem stops the reader and is kept.
package wire
