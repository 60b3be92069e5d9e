package decode

import (
	"context"
	"fmt"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
	_ "github.com/muonml/muon/records/coders"
)

func init() {
	register.DoFn4x0[context.Context, kafkaio.Record, func(records.Reading), func(kafkaio.Record)](&sensorFn{})
	register.DoFn4x0[context.Context, kafkaio.Records, func(records.Reading), func(kafkaio.Record)](&sensorBatchFn{})
	register.DoFn4x0[context.Context, kafkaio.Record, func(records.Image), func(kafkaio.Record)](&imageFn{})
	register.DoFn4x0[context.Context, kafkaio.Records, func(records.Image), func(kafkaio.Record)](&imageBatchFn{})
	register.Emitter1[records.Reading]()
	register.Emitter1[records.Image]()
	register.Emitter1[kafkaio.Record]()
}

// Stage is the name dead letters from this package carry in their stage header.
const Stage = "decode"

// Params configures decoding. The zero value is usable.
type Params struct {
	// MaxBytes is the largest payload accepted. Default
	// message.MaxReadingBytes (1 MiB) for readings and the image limits'
	// MaxBytes (32 MiB) for images.
	MaxBytes int
	// Image bounds image dimensions; zero fields take
	// message.DefaultImageLimits.
	Image message.ImageLimits
	// DeadLetterSuffix names dead-letter topics. Default kafkaio.DeadLetterSuffix.
	DeadLetterSuffix string
}

func (p Params) validate(name string) {
	if p.MaxBytes < 0 || p.Image.MaxWidth < 0 || p.Image.MaxHeight < 0 || p.Image.MaxPixels < 0 || p.Image.MaxBytes < 0 {
		panic(fmt.Sprintf("%s: negative limit in %+v", name, p))
	}
}

var (
	recordType  = reflect.TypeOf((*kafkaio.Record)(nil)).Elem()
	recordsType = reflect.TypeOf((*kafkaio.Records)(nil)).Elem()
)

// Sensors decodes sensor readings: PCollection<kafkaio.Record> or
// PCollection<kafkaio.Records> → PCollection<records.Reading>, and the dead letters
// as PCollection<kafkaio.Record>. A reading without its own ts takes the
// Kafka timestamp.
func Sensors(s beam.Scope, p Params, col beam.PCollection) (readings, dead beam.PCollection) {
	s = s.Scope("decode.Sensors")
	p.validate("decode.Sensors")
	if p.MaxBytes == 0 {
		p.MaxBytes = message.MaxReadingBytes
	}
	switch col.Type().Type() {
	case recordType:
		return beam.ParDo2(s, &sensorFn{Params: p}, col)
	case recordsType:
		return beam.ParDo2(s, &sensorBatchFn{sensorFn{Params: p}}, col)
	}
	panic(fmt.Sprintf("decode.Sensors: input is PCollection<%v>, want kafkaio.Record or kafkaio.Records", col.Type()))
}

// Images decodes images: PCollection<kafkaio.Record> or
// PCollection<kafkaio.Records> → PCollection<records.Image> (8-bit grayscale), and
// the dead letters. The device and label come from the record's headers;
// image dimensions are checked before any pixel is decoded.
func Images(s beam.Scope, p Params, col beam.PCollection) (images, dead beam.PCollection) {
	s = s.Scope("decode.Images")
	p.validate("decode.Images")
	if p.MaxBytes > 0 {
		p.Image.MaxBytes = p.MaxBytes
	}
	switch col.Type().Type() {
	case recordType:
		return beam.ParDo2(s, &imageFn{Params: p}, col)
	case recordsType:
		return beam.ParDo2(s, &imageBatchFn{imageFn{Params: p}}, col)
	}
	panic(fmt.Sprintf("decode.Images: input is PCollection<%v>, want kafkaio.Record or kafkaio.Records", col.Type()))
}

// counts accumulates per bundle and reaches Beam metrics once per bundle:
// a metric update per element would cost more than the decoding.
type counts struct {
	okC, deadC beam.Counter
	nOK, nDead int64
}

func newCounts(kind string) counts {
	return counts{okC: beam.NewCounter(Namespace, kind+OK), deadC: beam.NewCounter(Namespace, kind+Dead)}
}

func (c *counts) flush(ctx context.Context) {
	if c.nOK > 0 {
		c.okC.Inc(ctx, c.nOK)
	}
	if c.nDead > 0 {
		c.deadC.Inc(ctx, c.nDead)
	}
	c.nOK, c.nDead = 0, 0
}

type sensorFn struct {
	Params Params
	c      counts
	// slab holds the values of the readings this instance emits, carved
	// into one cap-limited sub-slice per reading: one allocation for many
	// readings instead of a growing slice each.
	slab []records.Value
	// last is the previous reading; the parser reuses its strings (device,
	// label, value names) when the next message repeats them.
	last records.Reading
}

// slabValues is how many values a slab holds.
const slabValues = 4096

func (fn *sensorFn) Setup() { fn.c = newCounts("sensor") }

// FinishBundle takes the emitters because Beam requires a DoFn's
// FinishBundle to declare the outputs its ProcessElement has.
func (fn *sensorFn) FinishBundle(ctx context.Context, _ func(records.Reading), _ func(kafkaio.Record)) {
	fn.c.flush(ctx)
}

func (fn *sensorFn) decode(r *kafkaio.Record, good func(records.Reading), bad func(kafkaio.Record)) {
	var out records.Reading
	err := fn.parse(r, &out)
	if err != nil {
		fn.c.nDead++
		bad(kafkaio.DeadLetter(*r, Stage, err, fn.Params.DeadLetterSuffix))
		return
	}
	fn.c.nOK++
	good(out)
}

func (fn *sensorFn) parse(r *kafkaio.Record, out *records.Reading) error {
	if len(r.Value) > fn.Params.MaxBytes {
		return fmt.Errorf("%w: %d bytes, limit %d (decode.max_bytes)", message.ErrTooLarge, len(r.Value), fn.Params.MaxBytes)
	}
	n := max(len(fn.last.Values), 8)
	if cap(fn.slab)-len(fn.slab) < n {
		// The old slab stays alive as long as readings emitted from it do.
		fn.slab = make([]records.Value, 0, max(slabValues, n))
	}
	start := len(fn.slab)
	vals := fn.slab[start : start+len(fn.last.Values)]
	copy(vals, fn.last.Values) // the names the parser may reuse
	m := records.Reading{Device: fn.last.Device, Label: fn.last.Label, Values: vals}
	if err := message.ParseReading(r.Value, r.Time, &m); err != nil {
		return err
	}
	k := len(m.Values)
	if k > 0 && start+k <= cap(fn.slab) && &m.Values[0] == &fn.slab[:start+1][start] {
		fn.slab = fn.slab[:start+k] // parsed in place
	}
	m.Values = m.Values[:k:k]
	fn.last = m
	*out = records.Reading{Device: m.Device, Time: m.Time, Values: m.Values, Label: m.Label,
		Source: records.Source{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}}
	return nil
}

func (fn *sensorFn) ProcessElement(_ context.Context, r kafkaio.Record, good func(records.Reading), bad func(kafkaio.Record)) {
	fn.decode(&r, good, bad)
}

type sensorBatchFn struct{ sensorFn }

func (fn *sensorBatchFn) ProcessElement(_ context.Context, rs kafkaio.Records, good func(records.Reading), bad func(kafkaio.Record)) {
	for i := range rs.Records {
		fn.decode(&rs.Records[i], good, bad)
	}
}

type imageFn struct {
	Params Params
	c      counts
}

func (fn *imageFn) Setup() { fn.c = newCounts("image") }

func (fn *imageFn) FinishBundle(ctx context.Context, _ func(records.Image), _ func(kafkaio.Record)) {
	fn.c.flush(ctx)
}

func (fn *imageFn) decode(r *kafkaio.Record, good func(records.Image), bad func(kafkaio.Record)) {
	im, err := DecodeImage(r, fn.Params.Image)
	if err != nil {
		fn.c.nDead++
		bad(kafkaio.DeadLetter(*r, Stage, err, fn.Params.DeadLetterSuffix))
		return
	}
	fn.c.nOK++
	good(im)
}

// DecodeImage decodes one image record within lim.
func DecodeImage(r *kafkaio.Record, lim message.ImageLimits) (records.Image, error) {
	dev, _ := r.Header(message.HeaderDevice)
	if len(dev) == 0 {
		return records.Image{}, fmt.Errorf("decode: image record has no %q header", message.HeaderDevice)
	}
	label, _ := r.Header(message.HeaderLabel)
	g, err := message.DecodeImage(r.Value, lim)
	if err != nil {
		return records.Image{}, err
	}
	w, h := g.Rect.Dx(), g.Rect.Dy()
	pix := g.Pix
	if g.Stride != w || len(pix) != w*h {
		pix = make([]byte, w*h)
		for y := 0; y < h; y++ {
			copy(pix[y*w:(y+1)*w], g.Pix[y*g.Stride:y*g.Stride+w])
		}
	}
	return records.Image{Device: string(dev), Label: string(label), Time: r.Time, Width: w, Height: h, Pix: pix,
		Source: records.Source{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}}, nil
}

func (fn *imageFn) ProcessElement(_ context.Context, r kafkaio.Record, good func(records.Image), bad func(kafkaio.Record)) {
	fn.decode(&r, good, bad)
}

type imageBatchFn struct{ imageFn }

func (fn *imageBatchFn) ProcessElement(_ context.Context, rs kafkaio.Records, good func(records.Image), bad func(kafkaio.Record)) {
	for i := range rs.Records {
		fn.decode(&rs.Records[i], good, bad)
	}
}

// Metric names, in namespace Namespace: Sensors counts SensorsOK and
// SensorsDead, Images ImagesOK and ImagesDead.
const (
	Namespace   = "decode"
	OK          = ".ok"
	Dead        = ".dead"
	SensorsOK   = "sensor" + OK
	SensorsDead = "sensor" + Dead
	ImagesOK    = "image" + OK
	ImagesDead  = "image" + Dead
)
