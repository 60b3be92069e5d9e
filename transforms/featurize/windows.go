package featurize

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/muonml/muon/io/kafkaio"
	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
	"github.com/muonml/muon/records/wire"
)

func init() {
	for _, t := range []reflect.Type{reflect.TypeOf((*chunk)(nil)).Elem(), reflect.TypeOf((*windowState)(nil)).Elem()} {
		beam.RegisterType(t)
	}
	beam.RegisterCoder(reflect.TypeOf((*chunk)(nil)).Elem(), encodeChunk, decodeChunk)
	beam.RegisterCoder(reflect.TypeOf((*windowState)(nil)).Elem(), encodeWindowState, decodeWindowState)
	register.DoFn5x0[context.Context, string, func(*chunk) bool, func(Row), func(kafkaio.Record)](&batchWindowFn{})
	register.Iter1[chunk]()
	register.DoFn2x0[records.Reading, func(beam.EventTime, string, chunk)](&chunkFn{})
	register.DoFn7x1[context.Context, state.Provider, timers.Provider, string, chunk, func(Row), func(kafkaio.Record), error](&streamWindowFn{})
	register.Emitter3[beam.EventTime, string, chunk]()
	register.Emitter1[kafkaio.Record]()
}

// StageLate is the dead-letter stage of readings that arrived after all
// their windows had closed.
const StageLate = "late"

// WindowParams configures Windows.
type WindowParams struct {
	// Channels are the value names to featurize, in row order. Required.
	Channels []string
	// Bands is the number of spectral band energies per channel. Default 0.
	Bands int
	// Size is the length of a window, a whole number of milliseconds. Required.
	Size time.Duration
	// Period is how far apart consecutive windows start, a whole number of
	// milliseconds no longer than Size. Default Size: fixed windows; a
	// shorter Period gives sliding windows.
	Period time.Duration
	// AllowedLateness is how long a window stays open after its end for
	// readings that arrive out of order. Default 0.
	AllowedLateness time.Duration
	// Unbounded selects the streaming implementation (state and event-time
	// timers per device). Default false: the input is bounded, every
	// device's readings are grouped, sorted by time and windowed at once.
	Unbounded bool
	// DeadLetterSuffix is appended to a late reading's source topic to name
	// its dead-letter topic. Default kafkaio.DeadLetterSuffix.
	DeadLetterSuffix string
	// MinReadings drops windows with fewer readings, such as the ragged
	// sliding windows at the start and end of a recording; they are
	// counted (featurize/windows.short). Default 0: none are dropped.
	MinReadings int
	// LastLabel labels a row with its latest labelled reading's label (a
	// remaining useful life, say) instead of the most frequent one.
	LastLabel bool
	// ChunkReadings is the most readings of one device the streaming
	// implementation carries to its per-device state in one element.
	// Default 4096.
	ChunkReadings int
	// Length, when > 0, makes rows of raw series for MiniRocket, as
	// CaseParams.Length.
	Length int
}

func (p *WindowParams) validate() error {
	if err := (CaseParams{Channels: p.Channels, Bands: p.Bands, Length: p.Length}).check(); err != nil {
		return err
	}
	if p.Period == 0 {
		p.Period = p.Size
	}
	if p.ChunkReadings == 0 {
		p.ChunkReadings = 4096
	}
	switch {
	case p.Size <= 0 || p.Size%time.Millisecond != 0:
		return fmt.Errorf("window size %v must be a positive whole number of milliseconds", p.Size)
	case p.Period <= 0 || p.Period%time.Millisecond != 0 || p.Period > p.Size:
		return fmt.Errorf("window period %v must be a positive whole number of milliseconds no longer than the size %v", p.Period, p.Size)
	case p.AllowedLateness < 0:
		return fmt.Errorf("allowed lateness %v is negative", p.AllowedLateness)
	case p.ChunkReadings < 0:
		return fmt.Errorf("chunk size %d is negative", p.ChunkReadings)
	case p.MinReadings < 0:
		return fmt.Errorf("minimum of %d readings a window is negative", p.MinReadings)
	}
	return nil
}

// Windows makes one feature row per device and event-time window:
// PCollection<records.Reading> → PCollection<Row> of the rows and
// PCollection<kafkaio.Record> of late readings as dead letters.
//
// Windows start at whole multiples of Period since the Unix epoch and are
// Size long; a reading at t is in every window [start, start+Size) that
// holds t. A row's Time is its window's last millisecond (end − 1 ms), its
// ID is "<device>@<start in Unix ms>", its features are those of Extractor
// with time in seconds from the window start, and its label is the most
// frequent label of its readings (or the latest, with LastLabel). Windows
// without readings, or with fewer than MinReadings, make no row.
//
// A device's window closes, and its row is emitted, once its end plus
// AllowedLateness is behind the pipeline's watermark or behind the newest
// reading of that device, whichever comes first: as Kafka Streams' grace
// period, per device, so one device's clock does not hold back another's
// windows and a device that goes quiet is closed by the watermark. On a
// stream, a device's readings must arrive in the order they were
// produced, which kafkaio's unbounded read keeps (it reads a partition in
// one bundle at a time, in offset order). A reading that arrives
// when every window holding it has closed is late: it is counted
// (featurize/windows.late) and sent to the dead letter with stage "late",
// its value the reading as JSON. A reading that missed only some of its
// windows is used in the others and counted (featurize/windows.late_partial).
// A bounded input has no late readings: it is sorted before windowing.
//
// It panics if p is invalid.
func Windows(s beam.Scope, p WindowParams, readings beam.PCollection) (rows, late beam.PCollection) {
	s = s.Scope("featurize.Windows")
	if err := p.validate(); err != nil {
		panic("featurize.Windows: " + err.Error())
	}
	// Readings travel to their device's window stage in chunks: the
	// runner's cost per element, not the features, bounds the throughput.
	chunks := beam.ParDo(s, &chunkFn{MaxReadings: p.ChunkReadings}, readings)
	if !p.Unbounded {
		return beam.ParDo2(s, &batchWindowFn{Params: p}, beam.GroupByKey(s, chunks))
	}
	return beam.ParDo2(s, &streamWindowFn{
		Params: p,
		State:  state.MakeValueState[windowState]("window"),
		Close:  timers.InEventTime("close"),
	}, chunks)
}

// windower assigns one device's readings to windows, keeps the readings
// of windows still open, and closes windows. Times are Unix nanoseconds.
type windower struct {
	size, period, lateness int64
	// closed is the end of the newest closed window: every window ending
	// at or before it has been emitted. math.MinInt64 before the first.
	closed int64
	// stream is the newest reading time seen, math.MinInt64 before the first.
	stream int64
	// buf holds the readings of open windows, sorted by time; readings
	// with equal times keep their arrival order.
	buf []records.Reading
}

func newWindower(p WindowParams) *windower {
	return &windower{size: int64(p.Size), period: int64(p.Period), lateness: int64(p.AllowedLateness), closed: math.MinInt64, stream: math.MinInt64}
}

// floorDiv is ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// Fates of a reading.
const (
	onTime = iota
	latePartial
	lateAll
)

// errTimeRange reports a reading whose time the windows cannot represent.
var errTimeRange = errors.New("reading time outside the years 1678–2261 that windows cover")

// nanos is t in Unix nanoseconds, or false outside their range.
func nanos(t time.Time) (int64, bool) {
	if t.Year() < 1678 || t.Year() > 2261 {
		return 0, false
	}
	return t.UnixNano(), true
}

// add adds a reading at t (Unix ns) and reports its fate; a reading that
// is late for all its windows is not kept.
func (w *windower) add(r records.Reading, t int64) int {
	lastEnd := floorDiv(t, w.period)*w.period + w.size
	if w.closed != math.MinInt64 && lastEnd <= w.closed {
		return lateAll
	}
	fate := onTime
	if firstEnd := floorDiv(t-w.size, w.period)*w.period + w.period + w.size; w.closed != math.MinInt64 && firstEnd <= w.closed {
		fate = latePartial
	}
	i := len(w.buf)
	for i > 0 && w.buf[i-1].Time.UnixNano() > t {
		i--
	}
	w.buf = append(w.buf, records.Reading{})
	copy(w.buf[i+1:], w.buf[i:])
	w.buf[i] = r
	w.stream = max(w.stream, t)
	return fate
}

// openStart is the start of the first window not yet closed.
func (w *windower) openStart() int64 {
	if w.closed == math.MinInt64 {
		return math.MinInt64
	}
	return w.closed - w.size + w.period
}

// close emits, in order of time, every window with readings that ends at
// or before wm − lateness and is not closed yet, then forgets the readings
// no open window holds.
func (w *windower) close(wm int64, emit func(start, end int64, rs []records.Reading)) {
	limit := wm
	if wm != math.MaxInt64 {
		limit = wm - w.lateness
	}
	newClosed := floorDiv(limit-w.size, w.period)*w.period + w.size
	if newClosed <= w.closed {
		return
	}
	if len(w.buf) > 0 {
		first := w.buf[0].Time.UnixNano()
		last := w.buf[len(w.buf)-1].Time.UnixNano()
		start := max(floorDiv(first-w.size, w.period)*w.period+w.period, w.openStart())
		for ; start <= last && start <= newClosed-w.size; start += w.period {
			lo := sort.Search(len(w.buf), func(i int) bool { return w.buf[i].Time.UnixNano() >= start })
			hi := sort.Search(len(w.buf), func(i int) bool { return w.buf[i].Time.UnixNano() >= start+w.size })
			if hi > lo {
				emit(start, start+w.size, w.buf[lo:hi])
			}
		}
	}
	w.closed = newClosed
	keep := w.openStart()
	n := sort.Search(len(w.buf), func(i int) bool { return w.buf[i].Time.UnixNano() >= keep })
	w.buf = append(w.buf[:0], w.buf[n:]...)
}

// nextClose is when, in event time, the first open window with readings
// can close, and false when no reading is kept.
func (w *windower) nextClose() (int64, bool) {
	if len(w.buf) == 0 {
		return 0, false
	}
	first := w.buf[0].Time.UnixNano()
	start := max(floorDiv(first-w.size, w.period)*w.period+w.period, w.openStart())
	return start + w.size + w.lateness, true
}

// windowRows turns closed windows into rows; it is the part the bounded
// and the streaming implementations share.
type windowRows struct {
	rows                        *rowMaker
	minReadings                 int
	rowsC, lateC, partC, shortC beam.Counter
}

func newWindowRows(p WindowParams) *windowRows {
	rm := newRowMaker(p.Channels, p.Bands)
	rm.lastLabel = p.LastLabel
	rm.length = p.Length
	return &windowRows{
		rows:        rm,
		minReadings: p.MinReadings,
		rowsC:       beam.NewCounter(Namespace, WindowRows),
		lateC:       beam.NewCounter(Namespace, WindowsLate),
		partC:       beam.NewCounter(Namespace, WindowsLatePartial),
		shortC:      beam.NewCounter(Namespace, WindowsShort),
	}
}

func (wr *windowRows) row(device string, start, end int64, rs []records.Reading) Row {
	features, label := wr.rows.features(rs, time.Unix(0, start))
	return Row{
		Key:      device,
		Time:     time.Unix(0, end).Add(-time.Millisecond).UTC(),
		Features: features,
		Label:    label,
		ID:       device + "@" + strconv.FormatInt(start/int64(time.Millisecond), 10),
	}
}

// deadLate is the dead letter of a late reading.
func deadLate(r records.Reading, w *windower, suffix string, cause error) kafkaio.Record {
	if cause == nil {
		cause = fmt.Errorf("late reading: its windows closed when the device's windows up to %s had closed (allowed lateness %v); resend it with a current time or raise windows.allowed_lateness",
			time.Unix(0, w.closed).UTC().Format(time.RFC3339Nano), time.Duration(w.lateness))
	}
	value := message.AppendReading(nil, records.Reading{Device: r.Device, Time: r.Time, Values: r.Values, Label: r.Label})
	return kafkaio.DeadLetter(kafkaio.Record{
		Topic: r.Source.Topic, Partition: r.Source.Partition, Offset: r.Source.Offset,
		Key: []byte(r.Device), Value: value,
	}, StageLate, cause, suffix)
}

// addAll adds rs to w in order, closing windows as the device's newest
// reading passes their close, and sending late readings to dead.
func (wr *windowRows) addAll(ctx context.Context, device string, w *windower, rs []records.Reading, suffix string, emit func(Row), dead func(kafkaio.Record)) {
	var late, partial int64
	for _, r := range rs {
		t, ok := nanos(r.Time)
		if !ok {
			late++
			dead(deadLate(r, w, suffix, fmt.Errorf("%w: %s", errTimeRange, r.Time.UTC().Format(time.RFC3339))))
			continue
		}
		switch w.add(r, t) {
		case lateAll:
			late++
			dead(deadLate(r, w, suffix, nil))
			continue
		case latePartial:
			partial++
		}
		if next, ok := w.nextClose(); ok && w.stream >= next {
			wr.closeTo(ctx, device, w, w.stream, emit)
		}
	}
	if late > 0 {
		wr.lateC.Inc(ctx, late)
	}
	if partial > 0 {
		wr.partC.Inc(ctx, partial)
	}
}

// closeTo closes w's windows up to wm and emits their rows.
func (wr *windowRows) closeTo(ctx context.Context, device string, w *windower, wm int64, emit func(Row)) {
	n, short, cut, narrow := 0, 0, 0, 0
	w.close(wm, func(start, end int64, rs []records.Reading) {
		if len(rs) < wr.minReadings {
			short++
			return
		}
		emit(wr.row(device, start, end, rs))
		if wr.rows.cut {
			cut++
		}
		if wr.rows.short {
			narrow++
		}
		n++
	})
	if n > 0 {
		wr.rowsC.Inc(ctx, int64(n))
	}
	if cut > 0 {
		seriesCut.Inc(ctx, int64(cut))
	}
	if narrow > 0 {
		bandsShort.Inc(ctx, int64(narrow))
	}
	if short > 0 {
		wr.shortC.Inc(ctx, int64(short))
	}
}

// sortReadings sorts readings by time, then by source coordinates, so that
// the order does not depend on how a runner grouped them.
func sortReadings(rs []records.Reading) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := &rs[i], &rs[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if a.Source.Topic != b.Source.Topic {
			return a.Source.Topic < b.Source.Topic
		}
		if a.Source.Partition != b.Source.Partition {
			return a.Source.Partition < b.Source.Partition
		}
		return a.Source.Offset < b.Source.Offset
	})
}

// batchWindowFn windows all readings of one device at once.
type batchWindowFn struct {
	Params WindowParams

	out *windowRows
}

func (fn *batchWindowFn) Setup() { fn.out = newWindowRows(fn.Params) }

func (fn *batchWindowFn) ProcessElement(ctx context.Context, device string, iter func(*chunk) bool, emit func(Row), dead func(kafkaio.Record)) {
	var all []records.Reading
	var c chunk
	for iter(&c) {
		all = append(all, c.Readings...)
	}
	sortReadings(all)
	w := newWindower(fn.Params)
	fn.out.addAll(ctx, device, w, all, fn.Params.DeadLetterSuffix, emit, dead)
	fn.out.closeTo(ctx, device, w, math.MaxInt64, emit)
}

// chunk is a run of one device's readings in arrival order.
type chunk struct {
	Readings []records.Reading
}

// chunkFn gathers each device's readings of a bundle into chunks, so the
// per-device state is read and written once per chunk, not per reading.
type chunkFn struct {
	MaxReadings int

	pending map[string][]records.Reading
	latest  map[string]time.Time
}

// StartBundle takes the emitter because Beam requires a DoFn's bundle
// methods to declare the outputs its ProcessElement has.
func (fn *chunkFn) StartBundle(_ func(beam.EventTime, string, chunk)) {
	fn.pending = map[string][]records.Reading{}
	fn.latest = map[string]time.Time{}
}

func (fn *chunkFn) ProcessElement(r records.Reading, emit func(beam.EventTime, string, chunk)) {
	rs := append(fn.pending[r.Device], r)
	if r.Time.After(fn.latest[r.Device]) {
		fn.latest[r.Device] = r.Time
	}
	if len(rs) >= fn.MaxReadings {
		fn.flush(r.Device, rs, emit)
		return
	}
	fn.pending[r.Device] = rs
}

func (fn *chunkFn) flush(device string, rs []records.Reading, emit func(beam.EventTime, string, chunk)) {
	emit(beam.EventTime(fn.latest[device].UnixMilli()), device, chunk{Readings: rs})
	delete(fn.pending, device)
	delete(fn.latest, device)
}

func (fn *chunkFn) FinishBundle(emit func(beam.EventTime, string, chunk)) {
	devices := make([]string, 0, len(fn.pending))
	for d := range fn.pending {
		devices = append(devices, d)
	}
	sort.Strings(devices)
	for _, d := range devices {
		fn.flush(d, fn.pending[d], emit)
	}
}

// windowState is a device's windower between elements.
type windowState struct {
	Closed, Stream int64
	Buf            []records.Reading
}

// streamWindowFn windows a device's readings as they arrive, keeping the
// readings of open windows in state and closing windows on the device's
// newest reading or on an event-time timer at the next window's close.
type streamWindowFn struct {
	Params WindowParams
	State  state.Value[windowState]
	Close  timers.EventTime

	out *windowRows
}

func (fn *streamWindowFn) Setup() { fn.out = newWindowRows(fn.Params) }

func (fn *streamWindowFn) load(sp state.Provider) (*windower, error) {
	w := newWindower(fn.Params)
	st, ok, err := fn.State.Read(sp)
	if err != nil {
		return nil, fmt.Errorf("featurize.Windows: reading window state: %w", err)
	}
	if ok {
		w.closed, w.stream, w.buf = st.Closed, st.Stream, st.Buf
	}
	return w, nil
}

func (fn *streamWindowFn) save(sp state.Provider, tp timers.Provider, w *windower) error {
	if err := fn.State.Write(sp, windowState{Closed: w.closed, Stream: w.stream, Buf: w.buf}); err != nil {
		return fmt.Errorf("featurize.Windows: writing window state: %w", err)
	}
	if at, ok := w.nextClose(); ok {
		fn.Close.Set(tp, time.Unix(0, at))
	}
	return nil
}

func (fn *streamWindowFn) ProcessElement(ctx context.Context, sp state.Provider, tp timers.Provider, device string, c chunk, emit func(Row), dead func(kafkaio.Record)) error {
	w, err := fn.load(sp)
	if err != nil {
		return err
	}
	fn.out.addAll(ctx, device, w, c.Readings, fn.Params.DeadLetterSuffix, emit, dead)
	return fn.save(sp, tp, w)
}

func (fn *streamWindowFn) OnTimer(ctx context.Context, ts beam.EventTime, sp state.Provider, tp timers.Provider, device string, _ timers.Context, emit func(Row), _ func(kafkaio.Record)) error {
	w, err := fn.load(sp)
	if err != nil {
		return err
	}
	wm := int64(math.MaxInt64)
	if t := ts.ToTime(); t.Year() <= 2261 {
		wm = t.UnixNano()
	}
	fn.out.closeTo(ctx, device, w, wm, emit)
	return fn.save(sp, tp, w)
}

var errCorruptState = errors.New("featurize: corrupt window state encoding")

func appendReadings(b []byte, rs []records.Reading) []byte {
	b = binary.AppendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = records.AppendReadingBinary(b, r)
	}
	return b
}

func readReadings(r *wire.Reader) []records.Reading {
	n := r.Uvarint()
	if n > uint64(r.Len()) {
		r.Fail()
		return nil
	}
	rs := make([]records.Reading, 0, n)
	for i := uint64(0); i < n && r.Err() == nil; i++ {
		rs = append(rs, records.ReadReadingBinary(r))
	}
	return rs
}

func encodeChunk(c chunk) ([]byte, error) { return appendReadings(nil, c.Readings), nil }

func decodeChunk(b []byte) (chunk, error) {
	r := wire.NewReader(b, errCorruptState)
	c := chunk{Readings: readReadings(r)}
	return c, r.Done()
}

func encodeWindowState(s windowState) ([]byte, error) {
	b := binary.AppendVarint(nil, s.Closed)
	b = binary.AppendVarint(b, s.Stream)
	return appendReadings(b, s.Buf), nil
}

func decodeWindowState(b []byte) (windowState, error) {
	r := wire.NewReader(b, errCorruptState)
	s := windowState{Closed: r.Varint(), Stream: r.Varint()}
	s.Buf = readReadings(r)
	return s, r.Done()
}

// Metric names, in namespace Namespace, of Windows: rows made, readings
// too late for every window they belong to (dead-lettered), readings too
// late for some, and windows with too few readings.
const (
	Namespace          = "featurize"
	WindowRows         = "windows.rows"
	WindowsLate        = "windows.late"
	WindowsLatePartial = "windows.late_partial"
	WindowsShort       = "windows.short"
)
