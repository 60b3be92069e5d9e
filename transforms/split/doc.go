// Package split holds rows out: a seeded fraction by a hash of their ids or
// devices (the same rows in every run, on every runner), and each device's
// latest row.
package split
