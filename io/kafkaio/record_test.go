package kafkaio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// at is a timestamp with nanoseconds, in UTC as the coder returns it.
var at = time.Date(2024, 5, 1, 12, 0, 0, 250_000_123, time.UTC)

// recordCases are coder round trips: in is encoded, want is what decodes.
// They differ only where the coder normalises (times come back in UTC, an
// empty header list comes back nil).
var recordCases = []struct {
	name     string
	in, want Record
}{
	{name: "zero"},
	{
		name: "nil key, empty value",
		in:   Record{Topic: "sensors", Key: nil, Value: []byte{}},
		want: Record{Topic: "sensors", Key: nil, Value: []byte{}},
	},
	{
		name: "empty key, nil value (tombstone)",
		in:   Record{Topic: "sensors", Key: []byte{}, Value: nil},
		want: Record{Topic: "sensors", Key: []byte{}, Value: nil},
	},
	{
		name: "sensor reading",
		in: Record{Topic: "sensors", Partition: 3, Offset: 1234567, Key: []byte("press-07"),
			Value: []byte(`{"device":"press-07","values":{"temp":71.5}}`), Time: at},
		want: Record{Topic: "sensors", Partition: 3, Offset: 1234567, Key: []byte("press-07"),
			Value: []byte(`{"device":"press-07","values":{"temp":71.5}}`), Time: at},
	},
	{
		name: "headers with empty, nil and repeated values",
		in: Record{Topic: "images", Headers: []Header{
			{Key: "device", Value: []byte("cam-1")},
			{Key: "label", Value: []byte{}},
			{Key: "trace", Value: nil},
			{Key: "", Value: []byte("no name")},
			{Key: "device", Value: []byte("cam-2")},
		}},
		want: Record{Topic: "images", Headers: []Header{
			{Key: "device", Value: []byte("cam-1")},
			{Key: "label", Value: []byte{}},
			{Key: "trace", Value: nil},
			{Key: "", Value: []byte("no name")},
			{Key: "device", Value: []byte("cam-2")},
		}},
	},
	{
		name: "empty header list comes back nil",
		in:   Record{Topic: "t", Headers: []Header{}},
		want: Record{Topic: "t"},
	},
	{
		name: "time in another zone comes back in UTC",
		in:   Record{Topic: "t", Time: at.In(time.FixedZone("CEST", 2*3600))},
		want: Record{Topic: "t", Time: at},
	},
	{
		name: "unix epoch is a time, not the zero time",
		in:   Record{Topic: "t", Time: time.Unix(0, 0)},
		want: Record{Topic: "t", Time: time.Unix(0, 0).UTC()},
	},
	{
		// Kafka timestamps are int64 milliseconds, so a producer can send
		// times that int64 nanoseconds cannot hold.
		name: "time beyond 2262",
		in:   Record{Topic: "t", Time: time.Date(3000, 1, 1, 0, 0, 0, 1_000_000, time.UTC)},
		want: Record{Topic: "t", Time: time.Date(3000, 1, 1, 0, 0, 0, 1_000_000, time.UTC)},
	},
	{
		name: "time before 1678",
		in:   Record{Topic: "t", Time: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)},
		want: Record{Topic: "t", Time: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)},
	},
	{
		name: "unicode topic and extreme coordinates",
		in:   Record{Topic: "capteurs/température-🌡", Partition: -1, Offset: math.MaxInt64, Key: []byte("ключ")},
		want: Record{Topic: "capteurs/température-🌡", Partition: -1, Offset: math.MaxInt64, Key: []byte("ключ")},
	},
	{
		name: "negative offset",
		in:   Record{Topic: "t", Partition: math.MaxInt32, Offset: -2},
		want: Record{Topic: "t", Partition: math.MaxInt32, Offset: -2},
	},
	{
		name: "binary value",
		in:   Record{Topic: "t", Value: bytes.Repeat([]byte{0, 0xff, 0x80}, 100)},
		want: Record{Topic: "t", Value: bytes.Repeat([]byte{0, 0xff, 0x80}, 100)},
	},
}

func TestRecordCoderRoundTrip(t *testing.T) {
	for _, tc := range recordCases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := encodeRecord(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeRecord(b)
			if err != nil {
				t.Fatalf("decodeRecord(%x): %v", b, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("round trip:\n got  %#v\n want %#v", got, tc.want)
			}
			if got.Time.Location() != time.UTC {
				t.Errorf("time location %v, want UTC", got.Time.Location())
			}
		})
	}
}

func TestRecordsCoderRoundTrip(t *testing.T) {
	var all Records
	for _, tc := range recordCases {
		all.Records = append(all.Records, tc.in)
	}
	var want []Record
	for _, tc := range recordCases {
		want = append(want, tc.want)
	}
	for _, tc := range []struct {
		name string
		in   Records
		want []Record
	}{
		{"nil batch", Records{}, []Record{}},
		{"empty batch", Records{Records: []Record{}}, []Record{}},
		{"one record", Records{Records: all.Records[3:4]}, want[3:4]},
		{"every case", all, want},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := encodeRecords(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeRecords(b)
			if err != nil {
				t.Fatalf("decodeRecords: %v", err)
			}
			if len(got.Records) != len(tc.want) || got.Records == nil {
				t.Fatalf("decoded %d records (nil %v), want %d", len(got.Records), got.Records == nil, len(tc.want))
			}
			for i := range tc.want {
				if !reflect.DeepEqual(got.Records[i], tc.want[i]) {
					t.Errorf("record %d:\n got  %#v\n want %#v", i, got.Records[i], tc.want[i])
				}
			}
		})
	}
}

// TestRecordCoderRegistered checks that Beam encodes Record and Records
// with this coder, not its default schema coder, and that the runner's
// element framing round-trips.
func TestRecordCoderRegistered(t *testing.T) {
	r := recordCases[4].in
	mine, _ := encodeRecord(r)
	batch := Records{Records: []Record{recordCases[3].want, recordCases[4].want}}
	mineBatch, _ := encodeRecords(batch)
	for _, tc := range []struct {
		v    any
		mine []byte
		want any
	}{
		{r, mine, recordCases[4].want},
		{batch, mineBatch, batch},
	} {
		typ := reflect.TypeOf(tc.v)
		var buf bytes.Buffer
		if err := beam.NewElementEncoder(typ).Encode(tc.v, &buf); err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		if !bytes.HasSuffix(buf.Bytes(), tc.mine) {
			t.Errorf("%v: Beam's encoding %x does not end with the kafkaio coder's %x", typ, buf.Bytes(), tc.mine)
		}
		got, err := beam.NewElementDecoder(typ).Decode(&buf)
		if err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v through Beam's element coder:\n got  %#v\n want %#v", typ, got, tc.want)
		}
	}
}

func TestReadRecordSequence(t *testing.T) {
	first, second := recordCases[3].in, recordCases[4].in
	b := AppendRecord(nil, &first)
	b = AppendRecord(b, &second)
	var r Record
	rest, err := ReadRecord(b, &r)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, recordCases[3].want) {
		t.Errorf("first record %#v, want %#v", r, recordCases[3].want)
	}
	// ReadRecord resets every field, so a Record can be reused.
	rest, err = ReadRecord(rest, &r)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, recordCases[4].want) {
		t.Errorf("second record %#v, want %#v", r, recordCases[4].want)
	}
	if len(rest) != 0 {
		t.Errorf("%d bytes left, want 0", len(rest))
	}
}

// TestRecordCoderTruncated cuts valid encodings at every byte position:
// every strict prefix must be refused with errCorruptRecord.
func TestRecordCoderTruncated(t *testing.T) {
	for _, tc := range recordCases {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := encodeRecord(tc.in)
			for i := range len(b) {
				if _, err := decodeRecord(b[:i]); !errors.Is(err, errCorruptRecord) {
					t.Fatalf("decodeRecord(first %d of %d bytes): err %v, want %v", i, len(b), err, errCorruptRecord)
				}
			}
		})
	}
	var all Records
	for _, tc := range recordCases {
		all.Records = append(all.Records, tc.in)
	}
	b, _ := encodeRecords(all)
	for i := range len(b) {
		if _, err := decodeRecords(b[:i]); !errors.Is(err, errCorruptRecord) {
			t.Fatalf("decodeRecords(first %d of %d bytes): err %v, want %v", i, len(b), err, errCorruptRecord)
		}
	}
}

func TestRecordCoderTrailingBytes(t *testing.T) {
	b, _ := encodeRecord(recordCases[3].in)
	if _, err := decodeRecord(append(b, 0)); !errors.Is(err, errCorruptRecord) || !strings.Contains(err.Error(), "1 trailing bytes") {
		t.Errorf("decodeRecord with a trailing byte: err %v, want %v with the count", err, errCorruptRecord)
	}
	bs, _ := encodeRecords(Records{Records: []Record{recordCases[3].in}})
	if _, err := decodeRecords(append(bs, 0, 0)); !errors.Is(err, errCorruptRecord) || !strings.Contains(err.Error(), "2 trailing bytes") {
		t.Errorf("decodeRecords with trailing bytes: err %v, want %v with the count", err, errCorruptRecord)
	}
}

// cat concatenates byte slices; uv and sv are varints. They spell out
// hand-made encodings in the tests below.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
func uv(x uint64) []byte         { return binary.AppendUvarint(nil, x) }
func sv(x int64) []byte          { return binary.AppendVarint(nil, x) }

// overlong is a varint longer than 64 bits.
var overlong = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}

func TestRecordCoderCorrupt(t *testing.T) {
	zero := []byte{0}
	// A valid encoding of Record{} is seven zero bytes: topic, partition,
	// offset, key, value, header count, time flag.
	if _, err := decodeRecord(make([]byte, 7)); err != nil {
		t.Fatalf("decodeRecord(7 zero bytes): %v", err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"topic length 2^40", cat(uv(1<<40), []byte("abc"))},
		{"topic length max uint64", cat(uv(math.MaxUint64), []byte("abc"))},
		{"topic length one past the data", cat(uv(4), []byte("abc"))},
		{"topic length overlong varint", overlong},
		{"partition overlong varint", cat(zero, overlong)},
		{"key length max uint64", cat(zero, zero, zero, uv(math.MaxUint64), []byte("k"))},
		{"key length 2^30+2", cat(zero, zero, zero, uv(1<<30+2), []byte("k"))},
		{"value length past the data", cat(zero, zero, zero, zero, uv(100), []byte("short"))},
		{"header count 2^62", cat(zero, zero, zero, zero, zero, uv(1<<62), zero, zero)},
		{"header count max uint64", cat(zero, zero, zero, zero, zero, uv(math.MaxUint64), zero, zero)},
		{"header count past the data", cat(zero, zero, zero, zero, zero, uv(3), zero, zero, zero)},
		{"header value length past the data", cat(zero, zero, zero, zero, zero, uv(1), uv(1), []byte("k"), uv(50), []byte("v"), zero)},
		{"no time flag", make([]byte, 6)},
		{"time flag without time", cat(make([]byte, 6), []byte{1})},
		{"time flag 2", cat(make([]byte, 6), []byte{2})},
		{"time flag 0xff", cat(make([]byte, 6), []byte{0xff})},
		{"nanoseconds ≥ 1e9", cat(make([]byte, 6), []byte{1}, sv(0), uv(1e9))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := decodeRecord(tc.in)
			if !errors.Is(err, errCorruptRecord) {
				t.Errorf("decodeRecord(%x) = %#v, %v; want %v", tc.in, r, err, errCorruptRecord)
			}
		})
	}
}

func TestRecordsCoderCorrupt(t *testing.T) {
	one := make([]byte, 7) // Record{}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"count overlong varint", overlong},
		{"count max uint64", cat(uv(math.MaxUint64), one)},
		{"count 2^60", cat(uv(1<<60), one)},
		{"count equal to the input length", cat(uv(8), one)},
		{"count two, one record", cat(uv(2), one)},
		{"second record corrupt", cat(uv(2), one, uv(1<<40))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := decodeRecords(tc.in)
			if !errors.Is(err, errCorruptRecord) {
				t.Errorf("decodeRecords(%x) = %d records, %v; want %v", tc.in, len(rs.Records), err, errCorruptRecord)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, tc := range recordCases {
		b, _ := encodeRecord(tc.in)
		f.Add(b)
	}
	f.Add(make([]byte, 7))
	f.Add(overlong)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errCorruptRecord) {
				t.Fatalf("error %v does not wrap %v", err, errCorruptRecord)
			}
			return
		}
		b2, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeRecord(b2)
		if err != nil {
			t.Fatalf("re-encoded %#v does not decode: %v", r, err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-encoding changed the record:\n first  %#v\n second %#v", r, r2)
		}
	})
}

func FuzzDecodeRecords(f *testing.F) {
	var all Records
	for _, tc := range recordCases {
		b, _ := encodeRecords(Records{Records: []Record{tc.in}})
		f.Add(b)
		all.Records = append(all.Records, tc.in)
	}
	b, _ := encodeRecords(all)
	f.Add(b)
	f.Add([]byte{0})
	f.Add(cat(uv(2), make([]byte, 14)))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := decodeRecords(b)
		if err != nil {
			if !errors.Is(err, errCorruptRecord) {
				t.Fatalf("error %v does not wrap %v", err, errCorruptRecord)
			}
			return
		}
		b2, err := encodeRecords(rs)
		if err != nil {
			t.Fatal(err)
		}
		rs2, err := decodeRecords(b2)
		if err != nil {
			t.Fatalf("re-encoded batch of %d does not decode: %v", len(rs.Records), err)
		}
		if !reflect.DeepEqual(rs, rs2) {
			t.Fatalf("re-encoding changed the batch:\n first  %#v\n second %#v", rs, rs2)
		}
	})
}

// benchRecord is a typical sensor record: a 112-byte reading whose record
// encodes to 146 bytes.
var benchRecord = Record{
	Topic: "sensors", Partition: 3, Offset: 18_446_744, Key: []byte("press-07"),
	Value: []byte(`{"device":"press-07","ts":"2024-05-01T12:00:00.250Z","values":{"temp":71.5,"vib":0.031,"rpm":1450},"label":"ok"}`),
	Time:  at,
}

func BenchmarkRecordCoder(b *testing.B) {
	enc, _ := encodeRecord(benchRecord)
	b.Logf("encoding: %d bytes", len(enc))
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		enc, err := encodeRecord(benchRecord)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodeRecord(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDeadLetter(t *testing.T) {
	cause := errors.New("message: missing device: at byte 0")
	src := Record{
		Topic: "sensors", Partition: 2, Offset: 4711,
		Key: []byte("press-07"), Value: []byte(`{"values":{"temp":1}}`),
		Headers: []Header{{Key: "trace-id", Value: []byte("abc")}, {Key: "empty", Value: []byte{}}},
		Time:    at.In(time.FixedZone("CEST", 2*3600)),
	}
	orig := append([]Header(nil), src.Headers...)
	for _, tc := range []struct {
		name, suffix, topic string
		time                time.Time
		wantTime            string // "" means no time header
	}{
		{name: "default suffix", suffix: "", topic: "sensors.dlq", time: src.Time, wantTime: "2024-05-01T12:00:00.250000123Z"},
		{name: "custom suffix", suffix: ".dead", topic: "sensors.dead", time: src.Time, wantTime: "2024-05-01T12:00:00.250000123Z"},
		{name: "no timestamp", suffix: "", topic: "sensors.dlq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := src
			in.Time = tc.time
			d := DeadLetter(in, "decode", cause, tc.suffix)
			if d.Topic != tc.topic {
				t.Errorf("topic %q, want %q", d.Topic, tc.topic)
			}
			if d.Partition != in.Partition || d.Offset != in.Offset || !d.Time.Equal(in.Time) {
				t.Errorf("coordinates %d/%d %v, want %d/%d %v", d.Partition, d.Offset, d.Time, in.Partition, in.Offset, in.Time)
			}
			if !bytes.Equal(d.Key, in.Key) || !bytes.Equal(d.Value, in.Value) {
				t.Errorf("key/value %q/%q, want %q/%q", d.Key, d.Value, in.Key, in.Value)
			}
			if !reflect.DeepEqual(d.Headers[:len(orig)], orig) {
				t.Errorf("original headers %v, want %v first", d.Headers[:len(orig)], orig)
			}
			for _, h := range []struct{ key, want string }{
				{HeaderError, cause.Error()},
				{HeaderStage, "decode"},
				{HeaderSourceTopic, "sensors"},
				{HeaderSourcePartition, "2"},
				{HeaderSourceOffset, "4711"},
				{HeaderSourceTime, tc.wantTime},
			} {
				v, ok := d.Header(h.key)
				if h.want == "" {
					if ok {
						t.Errorf("header %s = %q, want none", h.key, v)
					}
					continue
				}
				if !ok || string(v) != h.want {
					t.Errorf("header %s = %q (present %v), want %q", h.key, v, ok, h.want)
				}
			}
			if !reflect.DeepEqual(src.Headers, orig) {
				t.Errorf("DeadLetter changed its input's headers: %v", src.Headers)
			}
			// A dead letter survives the coder, headers and all.
			b, _ := encodeRecord(d)
			got, err := decodeRecord(b)
			if err != nil || !reflect.DeepEqual(got.Headers, d.Headers) {
				t.Errorf("dead letter through the coder: %v, headers %v, want %v", err, got.Headers, d.Headers)
			}
		})
	}
}

func TestParamsValidate(t *testing.T) {
	ok := Params{Brokers: []string{"localhost:9092"}, Topics: []string{"sensors"}}
	with := func(f func(*Params)) Params {
		p := ok
		f(&p)
		return p
	}
	for _, tc := range []struct {
		name string
		p    Params
		want error // nil: valid
	}{
		{"minimal", ok, nil},
		{"unbounded until", with(func(p *Params) { p.Unbounded, p.Until = true, at }), nil},
		{"unbounded stop file", with(func(p *Params) { p.Unbounded, p.StopFile = true, "/tmp/stop" }), nil},
		{"idle advancement disabled", with(func(p *Params) { p.IdleTimeout = -1 }), nil},
		{"explicit offsets", with(func(p *Params) { p.Start = Start{Kind: StartOffsets, Offsets: map[int]int64{0: 10, 3: 0}} }), nil},
		{"start latest", with(func(p *Params) { p.Start.Kind = StartLatest }), nil},
		{"start time", with(func(p *Params) { p.Start = Start{Kind: StartTime, Time: at} }), nil},
		{"no brokers", with(func(p *Params) { p.Brokers = nil }), ErrNoBrokers},
		{"no topics", with(func(p *Params) { p.Topics = []string{} }), ErrNoTopics},
		{"empty topic name", with(func(p *Params) { p.Topics = []string{"a", ""} }), ErrBadParams},
		{"offsets for two topics", with(func(p *Params) {
			p.Topics = []string{"a", "b"}
			p.Start = Start{Kind: StartOffsets, Offsets: map[int]int64{0: 1}}
		}), ErrBadParams},
		{"negative start offset", with(func(p *Params) { p.Start = Start{Kind: StartOffsets, Offsets: map[int]int64{0: -1}} }), ErrBadParams},
		{"negative partition", with(func(p *Params) { p.Start = Start{Kind: StartOffsets, Offsets: map[int]int64{-1: 0}} }), ErrBadParams},
		{"unknown start kind", with(func(p *Params) { p.Start.Kind = StartKind(42) }), ErrBadParams},
		{"negative checkpoint records", with(func(p *Params) { p.CheckpointRecords = -1 }), ErrBadParams},
		{"negative checkpoint interval", with(func(p *Params) { p.CheckpointInterval = -time.Second }), ErrBadParams},
		{"negative fetch bytes", with(func(p *Params) { p.FetchMaxBytes = -1 }), ErrBadParams},
		{"negative fetch wait", with(func(p *Params) { p.FetchMaxWait = -time.Millisecond }), ErrBadParams},
		{"negative batch records", with(func(p *Params) { p.BatchRecords = -1 }), ErrBadParams},
		{"negative dial timeout", with(func(p *Params) { p.DialTimeout = -time.Second }), ErrBadParams},
		{"negative max delay", with(func(p *Params) { p.MaxDelay = -time.Second }), ErrBadParams},
		{"until on a bounded read", with(func(p *Params) { p.Until = at }), ErrBadParams},
		{"stop file on a bounded read", with(func(p *Params) { p.StopFile = "/tmp/stop" }), ErrBadParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.p.withDefaults()
			err := q.validate()
			if tc.want == nil {
				if err != nil {
					t.Errorf("validate: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("validate: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParamsWithDefaults(t *testing.T) {
	p := Params{Brokers: []string{"b"}, Topics: []string{"t"}}
	q := p.withDefaults()
	want := Params{
		Brokers: []string{"b"}, Topics: []string{"t"},
		CheckpointRecords:  DefaultCheckpointRecords,
		CheckpointInterval: DefaultCheckpointInterval,
		IdleTimeout:        DefaultIdleTimeout,
		FetchMaxBytes:      DefaultFetchMaxBytes,
		FetchMaxWait:       DefaultFetchMaxWait,
		BatchRecords:       DefaultBatchRecords,
		DialTimeout:        DefaultDialTimeout,
		FetchConns:         DefaultFetchConns,
		ChunkRecords:       DefaultChunkRecords,
		ReconnectFor:       DefaultReconnectFor,
	}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("withDefaults:\n got  %+v\n want %+v", q, want)
	}
	if p.CheckpointRecords != 0 || p.DialTimeout != 0 {
		t.Errorf("withDefaults changed its receiver: %+v", p)
	}
	set := Params{CheckpointRecords: 7, CheckpointInterval: 3, IdleTimeout: -1, FetchMaxBytes: 5, FetchMaxWait: 6, BatchRecords: 8, DialTimeout: 9, FetchConns: 3, ChunkRecords: 10, ReconnectFor: 11}
	if got := set.withDefaults(); !reflect.DeepEqual(got, set) {
		t.Errorf("withDefaults overrode set values:\n got  %+v\n want %+v", got, set)
	}
}

func TestWriteParamsValidate(t *testing.T) {
	ok := WriteParams{Brokers: []string{"localhost:9092"}}
	with := func(f func(*WriteParams)) WriteParams {
		p := ok
		f(&p)
		return p
	}
	for _, tc := range []struct {
		name string
		p    WriteParams
		want error
	}{
		{"minimal", ok, nil},
		{"acks none", with(func(p *WriteParams) { p.Acks = AcksNone }), nil},
		{"no brokers", WriteParams{Topic: "t"}, ErrNoBrokers},
		{"acks -1", with(func(p *WriteParams) { p.Acks = -1 }), ErrBadParams},
		{"acks 3", with(func(p *WriteParams) { p.Acks = 3 }), ErrBadParams},
		{"negative batch", with(func(p *WriteParams) { p.Batch = -1 }), ErrBadParams},
		{"negative batch bytes", with(func(p *WriteParams) { p.BatchBytes = -1 }), ErrBadParams},
		{"negative attempts", with(func(p *WriteParams) { p.Attempts = -1 }), ErrBadParams},
		{"negative timeout", with(func(p *WriteParams) { p.Timeout = -time.Second }), ErrBadParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.p.withDefaults()
			err := q.validate()
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("validate: %v, want %v", err, tc.want)
			}
		})
	}
}

// panicMessage runs f and returns what it panicked with, or "" if it did not.
func panicMessage(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg, _ = r.(string)
			if msg == "" {
				msg = "non-string panic"
			}
		}
	}()
	f()
	return ""
}

func TestConstructionPanics(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(s beam.Scope)
		want  []string // substrings of the panic message
	}{
		{"Read without brokers", func(s beam.Scope) { Read(s, Params{Topics: []string{"t"}}) },
			[]string{"kafkaio.Read:", ErrNoBrokers.Error()}},
		{"Read without topics", func(s beam.Scope) { Read(s, Params{Brokers: []string{"b"}}) },
			[]string{"kafkaio.Read:", ErrNoTopics.Error()}},
		{"Read with a bad parameter", func(s beam.Scope) {
			Read(s, Params{Brokers: []string{"b"}, Topics: []string{"t"}, FetchMaxBytes: -1})
		}, []string{"kafkaio.Read:", ErrBadParams.Error()}},
		{"ReadBatches without brokers", func(s beam.Scope) { ReadBatches(s, Params{Topics: []string{"t"}}) },
			[]string{"kafkaio.ReadBatches:", ErrNoBrokers.Error()}},
		{"Write without brokers", func(s beam.Scope) {
			Write(s, WriteParams{Topic: "t"}, beam.Create(s, Record{Topic: "t"}))
		}, []string{"kafkaio.Write:", ErrNoBrokers.Error()}},
		{"Write with bad acks", func(s beam.Scope) {
			Write(s, WriteParams{Brokers: []string{"b"}, Acks: 9}, beam.Create(s, Record{Topic: "t"}))
		}, []string{"kafkaio.Write:", ErrBadParams.Error(), "acks 9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, s := beam.NewPipelineWithRoot()
			msg := panicMessage(func() { tc.build(s) })
			if msg == "" {
				t.Fatal("no panic")
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("panic %q does not contain %q", msg, w)
				}
			}
		})
	}
}
