// Package coders registers the Beam coders of muon's record types
// (records.Reading, records.Image): the compact binary form of package
// records, instead of Beam's schema coder. Every package that makes or
// takes a PCollection of them imports it; package records itself stays
// free of Beam, so producers can use it.
package coders

import (
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/records"
)

func init() {
	reading := reflect.TypeOf((*records.Reading)(nil)).Elem()
	beam.RegisterType(reading)
	beam.RegisterCoder(reading, records.MarshalReading, records.UnmarshalReading)
	image := reflect.TypeOf((*records.Image)(nil)).Elem()
	beam.RegisterType(image)
	beam.RegisterCoder(image, records.MarshalImage, records.UnmarshalImage)
}
