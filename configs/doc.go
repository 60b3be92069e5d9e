// Package configs loads, defaults and validates muon job specs (YAML).
//
// A spec fails to load, before anything starts, when it has an unknown
// field, a value of the wrong type, a missing required field or a value out
// of range; the error names the field path and the line. Overrides given as
// path=value (muon run --set) are applied before validation, so they are
// checked the same way.
package configs
