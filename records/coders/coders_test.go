package coders

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/muonml/muon/records"
)

// TestCodersRegistered checks that Beam encodes Reading and Image with the
// coders of package records.
func TestCodersRegistered(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 250_000_123, time.UTC)
	r := records.Reading{Device: "BasicMotions_TRAIN-0001", Time: at, Label: "Standing",
		Values: []records.Value{{Name: "dim0", Value: 0.079106}, {Name: "dim1", Value: -0.125399}},
		Source: records.Source{Topic: "sensors", Partition: 3, Offset: 1234567}}
	im := records.Image{Device: "cam-1", Label: "Blowhole", Time: at, Width: 3, Height: 2, Pix: []byte{0, 1, 2, 253, 254, 255},
		Source: records.Source{Topic: "images", Partition: 1, Offset: 42}}
	rb, _ := records.MarshalReading(r)
	ib, _ := records.MarshalImage(im)
	for _, tc := range []struct {
		v    any
		mine []byte
	}{{r, rb}, {im, ib}} {
		typ := reflect.TypeOf(tc.v)
		var buf bytes.Buffer
		if err := beam.NewElementEncoder(typ).Encode(tc.v, &buf); err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		if !bytes.HasSuffix(buf.Bytes(), tc.mine) {
			t.Errorf("%v: Beam's encoding %x does not end with package records' %x", typ, buf.Bytes(), tc.mine)
		}
		got, err := beam.NewElementDecoder(typ).Decode(&buf)
		if err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		if !reflect.DeepEqual(got, tc.v) {
			t.Errorf("%v through Beam's element coder:\n got  %+v\n want %+v", typ, got, tc.v)
		}
	}
}
