// Package featurize turns windows of sensor readings into feature rows.
//
// Per channel, in this order: mean, population standard deviation, min,
// max, root mean square, the least-squares slope over time (per second),
// and the energies of Bands equal-width frequency bands of the one-sided
// spectrum (gonum's dsp/fourier), without the DC term. The Beam transforms
// that assign readings to event-time windows per device build on these
// functions.
package featurize
