package message

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/records"
)

var fallback = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func TestParseReadingValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want records.Reading
	}{
		{"minimal", `{"device":"d","values":{"x":1}}`,
			records.Reading{Device: "d", Time: fallback, Values: []records.Value{{Name: "x", Value: 1}}}},
		{"all fields", `{"device":"press-07","ts":"2024-05-01T12:00:00.250+02:00","values":{"temp":71.5,"vib":-3.1e-2},"label":"ok"}`,
			records.Reading{Device: "press-07", Time: time.Date(2024, 5, 1, 10, 0, 0, 250e6, time.UTC), Values: []records.Value{{Name: "temp", Value: 71.5}, {Name: "vib", Value: -0.031}}, Label: "ok"}},
		{"epoch ms", `{"ts":1714564800250,"device":"d","values":{"x":1}}`,
			records.Reading{Device: "d", Time: time.Date(2024, 5, 1, 12, 0, 0, 250e6, time.UTC), Values: []records.Value{{Name: "x", Value: 1}}}},
		{"negative epoch ms", `{"ts":-1,"device":"d","values":{"x":1}}`,
			records.Reading{Device: "d", Time: time.Date(1969, 12, 31, 23, 59, 59, 999e6, time.UTC), Values: []records.Value{{Name: "x", Value: 1}}}},
		{"ts null uses fallback", `{"ts":null,"device":"d","values":{"x":1}}`,
			records.Reading{Device: "d", Time: fallback, Values: []records.Value{{Name: "x", Value: 1}}}},
		{"nanosecond ts", `{"ts":"2024-05-01T12:00:00.123456789Z","device":"d","values":{"x":1}}`,
			records.Reading{Device: "d", Time: time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC), Values: []records.Value{{Name: "x", Value: 1}}}},
		{"label null", `{"device":"d","values":{"x":1},"label":null}`,
			records.Reading{Device: "d", Time: fallback, Values: []records.Value{{Name: "x", Value: 1}}}},
		{"whitespace everywhere", " \t\r\n{ \"device\" :\n\"d\" , \"values\" : { \"x\" : 1 , \"y\" : 2 } } \n",
			records.Reading{Device: "d", Time: fallback, Values: []records.Value{{Name: "x", Value: 1}, {Name: "y", Value: 2}}}},
		{"order kept", `{"device":"d","values":{"z":3,"a":1,"m":2}}`,
			records.Reading{Device: "d", Time: fallback, Values: []records.Value{{Name: "z", Value: 3}, {Name: "a", Value: 1}, {Name: "m", Value: 2}}}},
		{"numbers", `{"device":"d","values":{"a":-0,"b":0.5e+3,"c":1E-2,"d":12345678901234567890,"e":1e-400}}`,
			records.Reading{Device: "d", Time: fallback, Values: []records.Value{{Name: "a", Value: math.Copysign(0, -1)}, {Name: "b", Value: 500}, {Name: "c", Value: 0.01}, {Name: "d", Value: 12345678901234567890}, {Name: "e", Value: 0}}}},
		{"escapes", `{"device":"a\"b\\c\/\b\f\n\r\t\u00e9\u20ac\ud83d\ude00","values":{"\u0078":1}}`,
			records.Reading{Device: "a\"b\\c/\b\f\n\r\t\u00e9\u20ac\U0001F600", Time: fallback, Values: []records.Value{{Name: "x", Value: 1}}}},
		{"lone surrogates become U+FFFD", `{"device":"\ud800x\udc00\ud800\ud800\udc00","values":{"x":1}}`,
			records.Reading{Device: "\ufffdx\ufffd\ufffd\U00010000", Time: fallback, Values: []records.Value{{Name: "x", Value: 1}}}},
		{"escaped field names", `{"\u0064evice":"d","v\u0061lues":{"x":1},"\u006c\u0061\u0062\u0065\u006c":"L"}`,
			records.Reading{Device: "d", Time: fallback, Values: []records.Value{{Name: "x", Value: 1}}, Label: "L"}},
		{"raw UTF-8", `{"device":"Gerät-ü-日本","values":{"température":1}}`,
			records.Reading{Device: "Gerät-ü-日本", Time: fallback, Values: []records.Value{{Name: "température", Value: 1}}}},
		{"unknown fields skipped", `{"meta":{"a":[1,2,{"b":[[],{}]}],"c":"}]"},"device":"d","n":null,"t":true,"f":false,"s":"x","num":-1.5e3,"values":{"x":1},"arr":[]}`,
			records.Reading{Device: "d", Time: fallback, Values: []records.Value{{Name: "x", Value: 1}}}},
		{"field names are case-sensitive", `{"device":"d","Device":5,"VALUES":null,"values":{"x":1}}`,
			records.Reading{Device: "d", Time: fallback, Values: []records.Value{{Name: "x", Value: 1}}}},
		{"empty label", `{"device":"d","values":{"x":1},"label":""}`,
			records.Reading{Device: "d", Time: fallback, Values: []records.Value{{Name: "x", Value: 1}}}},
		{"year 0 and 9999", `{"device":"d","ts":"9999-12-31T23:59:59.999Z","values":{"x":1}}`,
			records.Reading{Device: "d", Time: time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC), Values: []records.Value{{Name: "x", Value: 1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got records.Reading
			if err := ParseReading([]byte(tt.in), fallback, &got); err != nil {
				t.Fatalf("ParseReading: %v", err)
			}
			if !readingsEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if ref, err := referenceParse([]byte(tt.in), fallback); err != nil || !readingsEqual(ref, tt.want) {
				t.Errorf("reference disagrees: %+v, %v", ref, err)
			}
		})
	}
}

func TestParseReadingErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
		msg      string // part of the error text
	}{
		{"empty", ``, ErrSyntax, "want a JSON object at byte 0"},
		{"array", `[1]`, ErrSyntax, "want a JSON object"},
		{"string", `"x"`, ErrSyntax, ""},
		{"truncated", `{"device":"d","values":{"x":1}`, ErrSyntax, "unexpected end"},
		{"trailing data", `{"device":"d","values":{"x":1}} {}`, ErrSyntax, "after the object at byte 32"},
		{"trailing comma", `{"device":"d","values":{"x":1},}`, ErrSyntax, ""},
		{"trailing comma in values", `{"device":"d","values":{"x":1,}}`, ErrSyntax, ""},
		{"single quotes", `{'device':'d'}`, ErrSyntax, ""},
		{"unquoted key", `{device:"d"}`, ErrSyntax, ""},
		{"missing colon", `{"device" "d"}`, ErrSyntax, "want :"},
		{"control char in string", "{\"device\":\"a\nb\",\"values\":{\"x\":1}}", ErrSyntax, "control character"},
		{"bad escape", `{"device":"a\x","values":{"x":1}}`, ErrSyntax, "invalid escape"},
		{"bad unicode escape", `{"device":"\u12G4","values":{"x":1}}`, ErrSyntax, `\u escape`},
		{"invalid UTF-8", "{\"device\":\"\xff\",\"values\":{\"x\":1}}", ErrSyntax, "UTF-8 at byte 11"},
		{"invalid UTF-8 in ignored field", "{\"device\":\"d\",\"values\":{\"x\":1},\"z\":\"\xc3\"}", ErrSyntax, "UTF-8"},
		{"encoded surrogate", "{\"device\":\"\xed\xa0\x80\",\"values\":{\"x\":1}}", ErrSyntax, "UTF-8"},
		{"bad literal", `{"device":"d","values":{"x":1},"z":nul}`, ErrSyntax, "null"},
		{"leading zero", `{"device":"d","values":{"x":01}}`, ErrSyntax, ""},
		{"plus sign", `{"device":"d","values":{"x":+1}}`, ErrNonNumeric, ""},
		{"bare dot", `{"device":"d","values":{"x":1.}}`, ErrSyntax, "decimal point"},
		{"bare exponent", `{"device":"d","values":{"x":1e}}`, ErrSyntax, "exponent"},
		{"NaN literal", `{"device":"d","values":{"x":NaN}}`, ErrNonNumeric, ""},
		{"ignored field bad", `{"device":"d","values":{"x":1},"z":[1,]}`, ErrSyntax, ""},
		{"too deep", `{"z":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `,"device":"d","values":{"x":1}}`, ErrSyntax, "nesting deeper"},
		{"too large", `{"device":"d","values":{"x":1},"pad":"` + strings.Repeat(" ", MaxReadingBytes) + `"}`, ErrTooLarge, "limit is 1048576"},
		{"no device", `{"values":{"x":1}}`, ErrMissingDevice, "no device field"},
		{"empty device", `{"device":"","values":{"x":1}}`, ErrMissingDevice, "empty"},
		{"null device", `{"device":null,"values":{"x":1}}`, ErrMissingDevice, ""},
		{"numeric device", `{"device":7,"values":{"x":1}}`, ErrFieldType, "device is a number at byte 10"},
		{"no values", `{"device":"d"}`, ErrMissingValues, "no values field"},
		{"empty values", `{"device":"d","values":{ }}`, ErrMissingValues, "empty"},
		{"null values", `{"device":"d","values":null}`, ErrMissingValues, "null"},
		{"values array", `{"device":"d","values":[1,2]}`, ErrFieldType, "values is an array"},
		{"string value", `{"device":"d","values":{"ax":"1.5"}}`, ErrNonNumeric, `value "ax" at byte 29 is a string`},
		{"null value", `{"device":"d","values":{"x":null}}`, ErrNonNumeric, "is null"},
		{"bool value", `{"device":"d","values":{"x":true}}`, ErrNonNumeric, "boolean"},
		{"object value", `{"device":"d","values":{"x":{}}}`, ErrNonNumeric, "object"},
		{"overflow", `{"device":"d","values":{"x":1e400}}`, ErrNonNumeric, "float64 range"},
		{"empty name", `{"device":"d","values":{"":1}}`, ErrValueName, "byte 24"},
		{"duplicate value", `{"device":"d","values":{"x":1,"y":2,"x":3}}`, ErrDuplicateValue, `"x" at byte 36`},
		{"duplicate escaped value", `{"device":"d","values":{"x":1,"\u0078":3}}`, ErrDuplicateValue, ""},
		{"duplicate device", `{"device":"d","device":"e","values":{"x":1}}`, ErrDuplicateField, `"device" again at byte 14`},
		{"duplicate values", `{"device":"d","values":{"x":1},"values":{"y":1}}`, ErrDuplicateField, ""},
		{"duplicate ts", `{"device":"d","ts":1,"ts":2,"values":{"x":1}}`, ErrDuplicateField, ""},
		{"duplicate label", `{"device":"d","label":null,"label":"a","values":{"x":1}}`, ErrDuplicateField, ""},
		{"numeric label", `{"device":"d","values":{"x":1},"label":3}`, ErrFieldType, "label is a number"},
		{"ts without zone", `{"device":"d","ts":"2024-05-01T12:00:00","values":{"x":1}}`, ErrBadTimestamp, "RFC 3339 with a zone"},
		{"ts date only", `{"device":"d","ts":"2024-05-01","values":{"x":1}}`, ErrBadTimestamp, ""},
		{"ts bad day", `{"device":"d","ts":"2024-02-30T00:00:00Z","values":{"x":1}}`, ErrBadTimestamp, ""},
		{"ts fraction", `{"device":"d","ts":1.5,"values":{"x":1}}`, ErrBadTimestamp, "integer"},
		{"ts exponent", `{"device":"d","ts":17e11,"values":{"x":1}}`, ErrBadTimestamp, "integer"},
		{"ts too far", `{"device":"d","ts":253402300800000,"values":{"x":1}}`, ErrBadTimestamp, "0000–9999"},
		{"ts overflow", `{"device":"d","ts":99999999999999999999,"values":{"x":1}}`, ErrBadTimestamp, ""},
		{"ts before year 0", `{"device":"d","ts":"0000-01-01T00:00:00+01:00","values":{"x":1}}`, ErrBadTimestamp, "0000–9999"},
		{"ts bool", `{"device":"d","ts":true,"values":{"x":1}}`, ErrBadTimestamp, "boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r records.Reading
			err := ParseReading([]byte(tt.in), fallback, &r)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if len(tt.in) <= MaxReadingBytes {
				if _, err := referenceParse([]byte(tt.in), fallback); err == nil {
					t.Errorf("reference accepts it")
				}
			}
		})
	}
}

// TestParseReadingReuse checks the promise that a loop reusing one records.Reading
// allocates nothing for messages of the same shape.
func TestParseReadingReuse(t *testing.T) {
	msgs := [][]byte{
		[]byte(`{"device":"press-07","ts":"2024-05-01T12:00:00.250Z","values":{"temp":71.5,"vib":0.031,"rpm":1450},"label":"ok"}`),
		[]byte(`{"device":"press-07","ts":1714564800350,"values":{"temp":71.6,"vib":0.029,"rpm":1452},"label":"ok"}`),
		[]byte(`{"device":"press-07","values":{"t\u0065mp":71.7,"vib":0.035,"rpm":1449},"label":"ok"}`),
	}
	var r records.Reading
	if err := ParseReading(msgs[0], fallback, &r); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, m := range msgs {
			if err := ParseReading(m, fallback, &r); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run, want 0", allocs)
	}
	// A different message still gets its own strings.
	if err := ParseReading([]byte(`{"device":"other","values":{"a":1,"temp":2}}`), fallback, &r); err != nil {
		t.Fatal(err)
	}
	want := records.Reading{Device: "other", Time: fallback, Values: []records.Value{{Name: "a", Value: 1}, {Name: "temp", Value: 2}}}
	if !readingsEqual(r, want) {
		t.Errorf("got %+v, want %+v", r, want)
	}
}

func TestParseReadingManyValues(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"device":"d","values":{`)
	for i := range 5000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"v%d":%d`, i, i)
	}
	b.WriteString(`}}`)
	var r records.Reading
	if err := ParseReading([]byte(b.String()), fallback, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Values) != 5000 || r.Values[4999] != (records.Value{Name: "v4999", Value: 4999}) {
		t.Fatalf("%d values, last %+v", len(r.Values), r.Values[len(r.Values)-1])
	}
	dup := strings.Replace(b.String(), `}}`, `,"v2500":2}}`, 1)
	if err := ParseReading([]byte(dup), fallback, &r); !errors.Is(err, ErrDuplicateValue) {
		t.Fatalf("err = %v, want ErrDuplicateValue", err)
	}
}

func readingsEqual(a, b records.Reading) bool {
	if a.Device != b.Device || a.Label != b.Label || !a.Time.Equal(b.Time) || len(a.Values) != len(b.Values) {
		return false
	}
	for i := range a.Values {
		if a.Values[i].Name != b.Values[i].Name || math.Float64bits(a.Values[i].Value) != math.Float64bits(b.Values[i].Value) {
			return false
		}
	}
	return true
}

// smallInt gives exactly what strconv.ParseFloat gives for the integers it
// takes, and declines the rest.
func TestSmallIntMatchesParseFloat(t *testing.T) {
	for _, num := range []string{"0", "-0", "7", "16", "-16", "123456789012345", "-999999999999999", "1000000"} {
		f, ok := smallInt([]byte(num), true)
		want, err := strconv.ParseFloat(num, 64)
		if !ok || err != nil || f != want || math.Signbit(f) != math.Signbit(want) {
			t.Errorf("smallInt(%s) = %v, %v; ParseFloat %v", num, f, ok, want)
		}
	}
	for _, num := range []string{"1234567890123456", "-1234567890123456", "99999999999999999999"} {
		if f, ok := smallInt([]byte(num), true); ok {
			t.Errorf("smallInt(%s) = %v, want it declined (16 digits or more)", num, f)
		}
	}
	if _, ok := smallInt([]byte("1.5"), false); ok {
		t.Error("smallInt took a number that is not an integer")
	}
}
