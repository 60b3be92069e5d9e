// Package atomicfile writes files so that a reader never sees half of
// one: through a temporary file in the same folder and a rename.
package atomicfile
