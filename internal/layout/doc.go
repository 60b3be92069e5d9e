// Package layout holds the test that keeps muon's layering: which of its
// packages may import which. It has no code of its own.
package layout
