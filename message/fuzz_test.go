package message

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/muonml/muon/records"
)

// referenceParse is ParseReading written the slow, obvious way on top of
// encoding/json, to check the hand-written parser against. Where the
// contract is stricter than encoding/json (valid UTF-8, exact field names,
// no duplicate fields or values, integer epoch milliseconds) it says so
// explicitly.
func referenceParse(data []byte, fallback time.Time) (records.Reading, error) {
	r := records.Reading{Time: fallback}
	if len(data) > MaxReadingBytes {
		return r, ErrTooLarge
	}
	if !utf8.Valid(data) || !json.Valid(data) {
		return r, ErrSyntax
	}
	if b := bytes.TrimLeft(data, " \t\r\n"); b[0] != '{' {
		return r, ErrSyntax
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return r, err
	}
	seen := map[string]bool{}
	hasValues := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return r, err
		}
		key := tok.(string)
		switch key {
		case "device", "ts", "values", "label":
			if seen[key] {
				return r, ErrDuplicateField
			}
			seen[key] = true
		default:
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return r, err
			}
			continue
		}
		tok, err = dec.Token()
		if err != nil {
			return r, err
		}
		switch key {
		case "device":
			switch v := tok.(type) {
			case string:
				r.Device = v
			case nil:
			default:
				return r, ErrFieldType
			}
		case "label":
			switch v := tok.(type) {
			case string:
				r.Label = v
			case nil:
			default:
				return r, ErrFieldType
			}
		case "ts":
			switch v := tok.(type) {
			case nil:
			case string:
				var t time.Time
				if err := t.UnmarshalText([]byte(v)); err != nil {
					return r, ErrBadTimestamp
				}
				if y := t.UTC().Year(); y < 0 || y > 9999 {
					return r, ErrBadTimestamp
				}
				r.Time = t.UTC()
			case json.Number:
				ms, err := strconv.ParseInt(string(v), 10, 64)
				if err != nil {
					return r, ErrBadTimestamp
				}
				t := time.UnixMilli(ms).UTC()
				if y := t.Year(); y < 0 || y > 9999 {
					return r, ErrBadTimestamp
				}
				r.Time = t
			default:
				return r, ErrBadTimestamp
			}
		case "values":
			hasValues = true
			switch tok {
			case nil:
				return r, ErrMissingValues
			case json.Delim('{'):
			default:
				return r, ErrFieldType
			}
			names := map[string]bool{}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return r, err
				}
				name := tok.(string)
				if name == "" {
					return r, ErrValueName
				}
				if names[name] {
					return r, ErrDuplicateValue
				}
				names[name] = true
				tok, err = dec.Token()
				if err != nil {
					return r, err
				}
				num, ok := tok.(json.Number)
				if !ok {
					return r, ErrNonNumeric
				}
				f, err := strconv.ParseFloat(string(num), 64)
				if err != nil {
					return r, ErrNonNumeric
				}
				r.Values = append(r.Values, records.Value{Name: name, Value: f})
			}
			if _, err := dec.Token(); err != nil {
				return r, err
			}
			if len(r.Values) == 0 {
				return r, ErrMissingValues
			}
		}
	}
	if r.Device == "" {
		return r, ErrMissingDevice
	}
	if !hasValues {
		return r, ErrMissingValues
	}
	return r, nil
}

// readingSeeds look like what devices send: smartwatch channels from
// BasicMotions, the NAB machine temperature, and a few oddities.
var readingSeeds = []string{
	`{"device":"BasicMotions_TRAIN-0001","ts":"2024-05-01T12:00:00.000Z","values":{"dim0":0.079106,"dim1":0.394032,"dim2":0.551444,"dim3":0.351565,"dim4":0.02381,"dim5":-0.125399},"label":"Standing"}`,
	`{"device":"machine_temperature_system_failure","ts":"2013-12-02T21:15:00.000Z","values":{"value":73.96732207}}`,
	`{"device":"press-07","ts":1714564800250,"values":{"temp":71.5,"vib":-3.1e-2,"rpm":1450}}`,
	`{"device":"press-07","values":{"temp":71.5},"label":null,"fw":"1.2.3","gps":{"lat":48.1,"lon":11.5,"fix":[1,2,3]}}`,
	` { "device" : "caf\u00e9 \ud83d\ude00" , "ts" : null , "values" : { "a\"b" : -0 , "c" : 1E+2 } } `,
	`{"device":"d","ts":"2024-02-29T23:59:60Z","values":{"x":1}}`,
	`{"device":"d","values":{"x":"1"}}`,
	`{"device":"d","values":{}}`,
	`{"device":"d","device":"d","values":{"x":1}}`,
	`{"Device":"d","values":{"x":1}}`,
}

func FuzzParseReading(f *testing.F) {
	for _, s := range readingSeeds {
		f.Add([]byte(s))
	}
	// A reused destination exercises the string reuse paths.
	var warm records.Reading
	if err := ParseReading([]byte(readingSeeds[0]), time.Time{}, &warm); err != nil {
		f.Fatal(err)
	}
	if bin, err := AppendReadingBinary(nil, warm); err == nil {
		f.Add(bin)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := records.Reading{Device: warm.Device, Label: warm.Label, Values: append([]records.Value(nil), warm.Values...)}
		err := ParseReading(data, fallback, &got)
		if len(data) > 0 && data[0] == BinaryMagic {
			// The binary format: whatever it accepts encodes back to the
			// same bytes, and passes ValidateReading.
			if err != nil {
				return
			}
			if verr := ValidateReading(&got); verr != nil {
				t.Fatalf("binary reading accepted but invalid: %v\ninput: %q", verr, data)
			}
			back, berr := AppendReadingBinary(nil, got)
			if berr != nil {
				t.Fatalf("re-encoding %+v: %v", got, berr)
			}
			var again records.Reading
			if err := ParseReading(back, fallback, &again); err != nil || !readingsEqual(again, got) {
				t.Fatalf("binary round trip: %+v (%v)\nwant %+v", again, err, got)
			}
			return
		}
		ref, refErr := referenceParse(data, fallback)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("ParseReading: %v\nreference:    %v\ninput: %q", err, refErr, data)
		}
		if err != nil {
			if errors.Is(err, ErrSyntax) && !errors.Is(refErr, ErrSyntax) && !errors.Is(refErr, ErrTooLarge) {
				t.Fatalf("ParseReading reports %v for valid JSON (reference: %v)\ninput: %q", err, refErr, data)
			}
			return
		}
		if !readingsEqual(got, ref) {
			t.Fatalf("ParseReading: %+v\nreference:    %+v\ninput: %q", got, ref, data)
		}

		enc, err := EncodeReading(got)
		if err != nil {
			t.Fatalf("EncodeReading(%+v): %v", got, err)
		}
		if app := AppendReading(nil, got); !bytes.Equal(app, enc) {
			t.Fatalf("AppendReading %s != EncodeReading %s", app, enc)
		}
		var again records.Reading
		if err := ParseReading(enc, time.Time{}, &again); err != nil {
			t.Fatalf("round trip of %s: %v", enc, err)
		}
		if !readingsEqual(again, got) {
			t.Fatalf("round trip: %+v\nwant %+v\nvia %s", again, got, enc)
		}
		bin, err := AppendReadingBinary(nil, got)
		if err != nil {
			t.Fatalf("AppendReadingBinary(%+v): %v", got, err)
		}
		var fromBin records.Reading
		if err := ParseReading(bin, fallback, &fromBin); err != nil || !readingsEqual(fromBin, got) {
			t.Fatalf("binary round trip: %+v (%v)\nwant %+v", fromBin, err, got)
		}
	})
}

func TestReferenceSeeds(t *testing.T) {
	for i, s := range readingSeeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var r records.Reading
			err := ParseReading([]byte(s), fallback, &r)
			_, refErr := referenceParse([]byte(s), fallback)
			if (err == nil) != (refErr == nil) {
				t.Errorf("ParseReading: %v, reference: %v", err, refErr)
			}
		})
	}
}
