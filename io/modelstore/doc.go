// Package modelstore keeps published model snapshots: numbered versions,
// a pointer to the latest, retention, rejected snapshots with their
// reasons, and a watch for new versions.
//
// The bytes are opaque here; a Verify function (snapshot verification)
// decides which versions may serve. Dir is the directory implementation;
// Store is the interface an object store would implement too.
package modelstore
