package decode_test

import (
	"fmt"
	"hash/fnv"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/transforms/decode"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function1x1(readingString)
	register.Function1x1(imageString)
	register.DoFn1x1[kafkaio.Record, string](&deadLetterFn{})
}

// magneticTileDir holds the Magnetic-tile defect images (see
// shared/datasets/README.md).
const magneticTileDir = "../../../shared/datasets/magnetic_tile"

// t0 is the Kafka timestamp of the first test record.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// passert compares whole values, so outputs are summarised as strings that
// name every field a test checks.

func timeString(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func hash(b []byte) string {
	h := fnv.New64a()
	h.Write(b)
	return fmt.Sprintf("%016x", h.Sum64())
}

func readingString(r records.Reading) string {
	vals := make([]string, len(r.Values))
	for i, v := range r.Values {
		vals[i] = fmt.Sprintf("%s=%v", v.Name, v.Value)
	}
	return fmt.Sprintf("%s t=%s values=[%s] label=%q src=%s", r.Device, timeString(r.Time), strings.Join(vals, " "), r.Label, r.Source.ID())
}

func imageString(im records.Image) string {
	return fmt.Sprintf("%s label=%q %dx%d pix=%s t=%s src=%s", im.Device, im.Label, im.Width, im.Height, hash(im.Pix), timeString(im.Time), im.Source.ID())
}

// deadLetterFn summarises a dead letter. Want maps a source record's ID to
// a text its error header must contain; the summary shows that text when it
// does and the whole header when it does not.
type deadLetterFn struct {
	Want map[string]string
}

func (fn *deadLetterFn) ProcessElement(r kafkaio.Record) string {
	h := func(key string) string {
		v, ok := r.Header(key)
		if !ok {
			return "-"
		}
		return string(v)
	}
	var own []string
	for _, x := range r.Headers {
		if !strings.HasPrefix(x.Key, "muon.") {
			own = append(own, x.Key+"="+string(x.Value))
		}
	}
	src := h(kafkaio.HeaderSourceTopic) + "/" + h(kafkaio.HeaderSourcePartition) + "/" + h(kafkaio.HeaderSourceOffset)
	errText := h(kafkaio.HeaderError)
	if want := fn.Want[src]; want != "" && strings.Contains(errText, want) {
		errText = want
	}
	return deadString(r.Topic, r.Key, r.Value, h(kafkaio.HeaderStage), src, h(kafkaio.HeaderSourceTime), own, errText)
}

func deadString(topic string, key, value []byte, stage, src, srcTime string, own []string, errText string) string {
	return fmt.Sprintf("%s key=%q value=%s stage=%s src=%s time=%s headers=%v error~%s", topic, key, hash(value), stage, src, srcTime, own, errText)
}

// sensorCase is one input record and what it must become.
type sensorCase struct {
	rec kafkaio.Record
	// want is the reading's summary for a good record; empty for a bad one.
	want string
	// err is what the dead letter's error header must contain.
	err string
}

func sensorRecord(part int, off int64, t time.Time, value string) kafkaio.Record {
	var v []byte
	if value != "" {
		v = []byte(value)
	}
	return kafkaio.Record{Topic: "sensors", Partition: part, Offset: off, Key: []byte("press-07"), Value: v, Time: t}
}

// sensorMaxBytes is Params.MaxBytes in the sensor tests.
const sensorMaxBytes = 512

func sensorCases() []sensorCase {
	oversized := `{"device":"press-07","values":{"temp":1},"note":"` + strings.Repeat("x", sensorMaxBytes) + `"}`
	withTrace := sensorRecord(1, 7, t0, `{"device":"press-07","values":{"temp":71.5}`)
	withTrace.Headers = []kafkaio.Header{{Key: "trace-id", Value: []byte("abc123")}}
	return []sensorCase{
		{rec: sensorRecord(0, 0, t0, `{"device":"press-07","ts":"2024-05-01T11:59:59.250Z","values":{"temp":71.5,"vib":0.031,"rpm":1450},"label":"ok"}`),
			want: `press-07 t=2024-05-01T11:59:59.25Z values=[temp=71.5 vib=0.031 rpm=1450] label="ok" src=sensors/0/0`},
		{rec: sensorRecord(0, 1, t0.Add(time.Second), `{"device":"press-07","values":{"temp":72}}`),
			want: `press-07 t=2024-05-01T12:00:01Z values=[temp=72] label="" src=sensors/0/1`},
		{rec: sensorRecord(0, 2, t0.Add(2*time.Second), `{"device":"press-07","ts":null,"values":{"temp":73},"label":null}`),
			want: `press-07 t=2024-05-01T12:00:02Z values=[temp=73] label="" src=sensors/0/2`},
		{rec: sensorRecord(1, 0, t0, `{"device":"press-08","ts":1714564800123,"values":{"b":-1.5e-7,"a":2e21}}`),
			want: `press-08 t=2024-05-01T12:00:00.123Z values=[b=-1.5e-07 a=2e+21] label="" src=sensors/1/0`},
		// Years the message contract accepts beyond what int64 nanoseconds hold.
		{rec: sensorRecord(1, 1, t0, `{"device":"press-08","ts":"3000-01-01T00:00:00Z","values":{"a":1}}`),
			want: `press-08 t=3000-01-01T00:00:00Z values=[a=1] label="" src=sensors/1/1`},
		// A Kafka record without a timestamp and a reading without ts.
		{rec: sensorRecord(1, 2, time.Time{}, `{"device":"press-08","values":{"a":2}}`),
			want: `press-08 t=zero values=[a=2] label="" src=sensors/1/2`},
		{rec: sensorRecord(2, 40, t0, ` {"values":{"température":-0.5,"x\"y":0},"device":"capteur-é🌡","extra":[1,{"a":null}]} `),
			want: `capteur-é🌡 t=2024-05-01T12:00:00Z values=[température=-0.5 x"y=0] label="" src=sensors/2/40`},

		{rec: withTrace, err: message.ErrSyntax.Error()},
		{rec: sensorRecord(1, 8, t0, `{"values":{"temp":1}}`), err: "missing device"},
		{rec: sensorRecord(1, 9, t0, `{"device":"press-07","values":{"temp":"hot"}}`), err: message.ErrNonNumeric.Error()},
		{rec: sensorRecord(1, 10, t0, `{"device":"press-07","values":{}}`), err: message.ErrMissingValues.Error()},
		{rec: sensorRecord(1, 11, t0, `{"device":"press-07","ts":"yesterday","values":{"temp":1}}`), err: message.ErrBadTimestamp.Error()},
		{rec: sensorRecord(1, 12, t0, oversized), err: message.ErrTooLarge.Error()},
		{rec: sensorRecord(1, 13, time.Time{}, ""), err: message.ErrSyntax.Error()}, // tombstone
		{rec: sensorRecord(1, 14, t0, `{"device":"press-07","values":{"a":1,"a":2}}`), err: message.ErrDuplicateValue.Error()},
		{rec: sensorRecord(1, 15, t0, `{"device":"press-07","values":{"a":1},"label":5}`), err: message.ErrFieldType.Error()},
		{rec: sensorRecord(1, 16, t0, `[1,2,3]`), err: message.ErrSyntax.Error()},
	}
}

// expect returns the summaries of the good readings, the dead-letter
// summaries and the Want map of deadLetterFn.
func expect(cases []sensorCase, suffix string) (good, dead []any, want map[string]string) {
	want = map[string]string{}
	for _, c := range cases {
		if c.want != "" {
			good = append(good, c.want)
			continue
		}
		r := c.rec
		src := fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
		want[src] = c.err
		srcTime := "-"
		if !r.Time.IsZero() {
			srcTime = r.Time.UTC().Format(time.RFC3339Nano)
		}
		var own []string
		for _, h := range r.Headers {
			own = append(own, h.Key+"="+string(h.Value))
		}
		dead = append(dead, deadString(r.Topic+suffix, r.Key, r.Value, decode.Stage, src, srcTime, own, c.err))
	}
	return good, dead, want
}

func TestSensors(t *testing.T) {
	cases := sensorCases()
	var recs []kafkaio.Record
	for _, c := range cases {
		recs = append(recs, c.rec)
	}
	good, dead, want := expect(cases, ".dlq")

	p, s := beam.NewPipelineWithRoot()
	readings, dls := decode.Sensors(s, decode.Params{MaxBytes: sensorMaxBytes}, beam.CreateList(s, recs))
	// Reshuffle so that readings and dead letters go through their coders,
	// as they do when a later stage groups them; fused stages skip them.
	readings, dls = beam.Reshuffle(s, readings), beam.Reshuffle(s, dls)
	passert.Equals(s, beam.ParDo(s, readingString, readings), good...)
	passert.Equals(s, beam.ParDo(s, &deadLetterFn{Want: want}, dls), dead...)
	ptest.RunAndValidate(t, p)
}

// TestSensorsBatches feeds the same records as kafkaio.Records batches, as
// kafkaio.ReadBatches emits them, with a custom dead-letter suffix.
func TestSensorsBatches(t *testing.T) {
	cases := sensorCases()
	var recs []kafkaio.Record
	for _, c := range cases {
		recs = append(recs, c.rec)
	}
	batches := []kafkaio.Records{{Records: recs[:5]}, {}, {Records: recs[5:]}}
	good, dead, want := expect(cases, ".bad")

	p, s := beam.NewPipelineWithRoot()
	readings, dls := decode.Sensors(s, decode.Params{MaxBytes: sensorMaxBytes, DeadLetterSuffix: ".bad"}, beam.CreateList(s, batches))
	readings, dls = beam.Reshuffle(s, readings), beam.Reshuffle(s, dls)
	passert.Equals(s, beam.ParDo(s, readingString, readings), good...)
	passert.Equals(s, beam.ParDo(s, &deadLetterFn{Want: want}, dls), dead...)
	ptest.RunAndValidate(t, p)
}

// imageMaxWidth is Params.Image.MaxWidth in the image tests; the tiles
// below are narrower but for the one meant to exceed it.
const imageMaxWidth = 400

type imageCase struct {
	rec  kafkaio.Record
	want string
	err  string
}

func imageRecord(t *testing.T, off int64, data []byte, headers ...string) kafkaio.Record {
	t.Helper()
	r := kafkaio.Record{Topic: "images", Partition: 0, Offset: off, Value: data, Time: t0.Add(time.Duration(off) * time.Second)}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Headers = append(r.Headers, kafkaio.Header{Key: headers[i], Value: []byte(headers[i+1])})
	}
	return r
}

// tile reads one image of the dataset and returns its bytes and the summary
// of what decoding it must give, computed with image/jpeg directly.
func tile(t *testing.T, class, name, device, label string, off int64) (data []byte, want string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(magneticTileDir, "MT_"+class, "Imgs", name))
	if err != nil {
		t.Skipf("magnetic-tile dataset not found (see shared/datasets/README.md): %v", err)
	}
	img, err := jpeg.Decode(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("%s decodes to %T, want a grayscale JPEG", name, img)
	}
	w, h := g.Rect.Dx(), g.Rect.Dy()
	pix := make([]byte, 0, w*h)
	for y := range h {
		pix = append(pix, g.Pix[y*g.Stride:y*g.Stride+w]...)
	}
	want = fmt.Sprintf("%s label=%q %dx%d pix=%s t=%s src=images/0/%d", device, label, w, h, hash(pix),
		timeString(t0.Add(time.Duration(off)*time.Second)), off)
	return data, want
}

func TestImages(t *testing.T) {
	var cases []imageCase
	good := func(class, name, device, label string) {
		off := int64(len(cases))
		data, want := tile(t, class, name, device, label, off)
		headers := []string{message.HeaderDevice, device, message.HeaderContentType, message.ContentTypeJPEG}
		if label != "" {
			headers = append(headers, message.HeaderLabel, label)
		}
		cases = append(cases, imageCase{rec: imageRecord(t, off, data, headers...), want: want})
	}
	bad := func(data []byte, err string, headers ...string) {
		cases = append(cases, imageCase{rec: imageRecord(t, int64(len(cases)), data, headers...), err: err})
	}
	good("Blowhole", "exp1_num_262480.jpg", "cam-1", "Blowhole")
	good("Break", "exp1_num_241889.jpg", "cam-1", "Break")
	good("Crack", "exp1_num_249594.jpg", "cam-2", "Crack")
	good("Free", "exp0_num_743.jpg", "cam-2", "") // unlabelled
	good("Uneven", "exp0_num_461.jpg", "cam-3", "Uneven")

	jpg, _ := tile(t, "Free", "exp0_num_743.jpg", "", "", 0)
	wide, _ := tile(t, "Fray", "exp1_num_135544.jpg", "", "", 0) // 602×240
	bad(jpg[:len(jpg)/2], message.ErrImageCorrupt.Error(), message.HeaderDevice, "cam-1")
	bad([]byte("this is not an image"), message.ErrImageFormat.Error(), message.HeaderDevice, "cam-1")
	bad(nil, message.ErrImageFormat.Error(), message.HeaderDevice, "cam-1")
	bad(jpg, `no "device" header`, message.HeaderLabel, "Free")
	bad(jpg, `no "device" header`, message.HeaderDevice, "")
	bad(wide, message.ErrImageTooLarge.Error(), message.HeaderDevice, "cam-1", message.HeaderLabel, "Fray")

	var recs []kafkaio.Record
	var wantGood []any
	want := map[string]string{}
	var wantDead []any
	for _, c := range cases {
		recs = append(recs, c.rec)
		if c.want != "" {
			wantGood = append(wantGood, c.want)
			continue
		}
		r := c.rec
		src := fmt.Sprintf("images/0/%d", r.Offset)
		want[src] = c.err
		var own []string
		for _, h := range r.Headers {
			own = append(own, h.Key+"="+string(h.Value))
		}
		wantDead = append(wantDead, deadString("images.dlq", r.Key, r.Value, decode.Stage, src, r.Time.Format(time.RFC3339Nano), own, c.err))
	}

	p, s := beam.NewPipelineWithRoot()
	params := decode.Params{Image: message.ImageLimits{MaxWidth: imageMaxWidth}}
	images, dls := decode.Images(s, params, beam.CreateList(s, recs))
	images, dls = beam.Reshuffle(s, images), beam.Reshuffle(s, dls)
	passert.Equals(s, beam.ParDo(s, imageString, images), wantGood...)
	passert.Equals(s, beam.ParDo(s, &deadLetterFn{Want: want}, dls), wantDead...)

	// The same records in one batch.
	images, dls = decode.Images(s.Scope("batch"), params, beam.Create(s, kafkaio.Records{Records: recs}))
	passert.Equals(s, beam.ParDo(s, imageString, images), wantGood...)
	passert.Equals(s, beam.ParDo(s, &deadLetterFn{Want: want}, dls), wantDead...)
	ptest.RunAndValidate(t, p)
}

func TestConstructionPanics(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(s beam.Scope)
		want  string
	}{
		{"Sensors with a negative limit", func(s beam.Scope) {
			decode.Sensors(s, decode.Params{MaxBytes: -1}, beam.Create(s, kafkaio.Record{}))
		}, "decode.Sensors: negative limit"},
		{"Sensors of strings", func(s beam.Scope) {
			decode.Sensors(s, decode.Params{}, beam.Create(s, "x"))
		}, "decode.Sensors: input is PCollection<string>"},
		{"Images with a negative width", func(s beam.Scope) {
			decode.Images(s, decode.Params{Image: message.ImageLimits{MaxWidth: -1}}, beam.Create(s, kafkaio.Record{}))
		}, "decode.Images: negative limit"},
		{"Images of bytes", func(s beam.Scope) {
			decode.Images(s, decode.Params{}, beam.Create(s, []byte("x")))
		}, "decode.Images: input is PCollection<[]uint8>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, s := beam.NewPipelineWithRoot()
			var msg string
			func() {
				defer func() {
					if r := recover(); r != nil {
						msg = fmt.Sprint(r)
					}
				}()
				tc.build(s)
			}()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("panic %q, want one containing %q", msg, tc.want)
			}
		})
	}
}
