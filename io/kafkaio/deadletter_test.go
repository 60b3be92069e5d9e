package kafkaio

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// A dead letter too large to write is cut to fit, value first, and says
// what it cut, how large the value was and its digest.
func TestDeadLetterCutToFit(t *testing.T) {
	big := func(n int) []byte { return bytes.Repeat([]byte("x"), n) }
	cause := errors.New("message: invalid JSON: at byte 7")
	for _, tc := range []struct {
		name    string
		in      Record
		wantCut string // "" means kept whole
	}{
		{"small record kept whole", Record{Topic: "s", Key: []byte("k"), Value: []byte("{")}, ""},
		{"value at the limit kept whole", Record{Topic: "s", Key: []byte("k"), Value: big(MaxDeadLetterBytes - 600)}, ""},
		{"value just under the broker limit", Record{Topic: "s", Key: []byte("k"), Value: big(1_048_000),
			Headers: []Header{{Key: "trace", Value: []byte("t1")}}}, "value"},
		{"huge original headers", Record{Topic: "s", Key: []byte("k"), Value: big(10),
			Headers: []Header{{Key: "blob", Value: big(2_000_000)}}}, "value,headers"},
		{"huge key", Record{Topic: "s", Key: big(3_000_000), Value: big(10)}, "value,headers,key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DeadLetter(tc.in, "decode", cause, "")
			if n := recordBytes(d.Key, d.Value, d.Headers); n > MaxDeadLetterBytes {
				t.Fatalf("dead letter takes %d bytes, limit %d", n, MaxDeadLetterBytes)
			}
			if v, _ := d.Header(HeaderError); string(v) != cause.Error() {
				t.Errorf("error header %q", v)
			}
			cut, ok := d.Header(HeaderCut)
			if string(cut) != tc.wantCut {
				t.Fatalf("cut %q (present %v), want %q", cut, ok, tc.wantCut)
			}
			if tc.wantCut == "" {
				if !bytes.Equal(d.Value, tc.in.Value) || len(d.Headers) != len(tc.in.Headers)+5 {
					t.Errorf("kept-whole dead letter changed: value %d bytes, %d headers", len(d.Value), len(d.Headers))
				}
				return
			}
			size, _ := d.Header(HeaderOriginalSize)
			sum := sha256.Sum256(tc.in.Value)
			digest, _ := d.Header(HeaderOriginalDigest)
			if string(size) != strconv.Itoa(len(tc.in.Value)) || string(digest) != "sha256:"+hex.EncodeToString(sum[:]) {
				t.Errorf("original size %q digest %q, want %d and the value's SHA-256", size, digest, len(tc.in.Value))
			}
			if !bytes.HasPrefix(tc.in.Value, d.Value) || !bytes.HasPrefix(tc.in.Key, d.Key) {
				t.Error("cut value or key is not a prefix of the original")
			}
			if tc.wantCut == "value" && (len(d.Value) < MaxDeadLetterBytes/2 || string(d.Headers[0].Value) != "t1") {
				t.Errorf("cutting the value kept %d bytes and headers %v", len(d.Value), d.Headers[:1])
			}
			if src, _ := d.Header(HeaderSourceOffset); string(src) != "0" {
				t.Errorf("source offset header %q", src)
			}
		})
	}
}

func TestDeadLetterCapsItsError(t *testing.T) {
	d := DeadLetter(Record{Topic: "s"}, "inference", errors.New("model: "+strings.Repeat("é", 10_000)), "")
	v, _ := d.Header(HeaderError)
	if len(v) > maxErrorBytes || !strings.HasSuffix(string(v), "(cut)") || !strings.HasPrefix(string(v), "model: é") {
		t.Errorf("error header of %d bytes: %.40q…", len(v), v)
	}
}

func TestDeadLetterReason(t *testing.T) {
	for _, tc := range []struct{ stage, msg, want string }{
		{"decode", "message: invalid JSON: at byte 7", "decode: message: invalid JSON"},
		{"late", "late reading", "late: late reading"},
		{"decode", "message: bad\x1b]0;title\x07: x", `decode: message: bad\x1b]0;title\a`},
	} {
		if got := DeadLetterReason(tc.stage, tc.msg); got != tc.want {
			t.Errorf("DeadLetterReason(%q, %q) = %q, want %q", tc.stage, tc.msg, got, tc.want)
		}
	}
	if got := DeadLetterReason("decode", strings.Repeat("a", 1000)); len(got) > 4*maxReasonRunes {
		t.Errorf("reason of %d bytes", len(got))
	}
}

// Only messages with dead-letter headers are counted, by reason, and the
// reasons one writer counts are bounded.
func TestReasonCountsBounded(t *testing.T) {
	var c reasonCounts
	msg := func(stage, err string) kafka.Message {
		return kafka.Message{Headers: []kafka.Header{{Key: HeaderError, Value: []byte(err)}, {Key: HeaderStage, Value: []byte(stage)}}}
	}
	if _, ok := deadLetterReason(kafka.Message{Value: []byte("prediction")}.Headers); ok {
		t.Error("a message without dead-letter headers has a reason")
	}
	if r, ok := deadLetterReason(msg("decode", "message: invalid JSON: byte 3").Headers); !ok || r != "decode: message: invalid JSON" {
		t.Errorf("reason %q %v", r, ok)
	}
	for i := 0; i < 10*maxReasons; i++ {
		c.counter(DeadLetterReason("decode", "kind"+strconv.Itoa(i)+": detail"))
	}
	if len(c.counters) != maxReasons+1 {
		t.Errorf("%d counters after %d distinct reasons, want %d", len(c.counters), 10*maxReasons, maxReasons+1)
	}
	if _, ok := c.counters["decode: other"]; !ok {
		t.Error(`no "decode: other" counter`)
	}
}

// An empty value stays an empty value on its way to the dead-letter topic,
// through the coder, rather than becoming a null (a tombstone).
func TestDeadLetterOfEmptyValueIsNotNull(t *testing.T) {
	d := DeadLetter(Record{Topic: "s", Key: []byte("k")}, "decode", errors.New("message: invalid JSON: empty"), "")
	b, _ := encodeRecord(d)
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Value == nil || got.Value == nil || got.Message().Value == nil || len(got.Value) != 0 {
		t.Errorf("dead letter value %q (nil %v), after the coder %q (nil %v)", d.Value, d.Value == nil, got.Value, got.Value == nil)
	}
}
