package message

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/muonml/muon/records"
)

func TestAppendReading(t *testing.T) {
	ts := time.Date(2024, 5, 1, 12, 0, 0, 250e6, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		name string
		in   records.Reading
		want string
	}{
		{"full", records.Reading{Device: "press-07", Time: ts, Values: []records.Value{{Name: "temp", Value: 71.5}, {Name: "vib", Value: 0.031}}, Label: "ok"},
			`{"device":"press-07","ts":"2024-05-01T10:00:00.250Z","values":{"temp":71.5,"vib":0.031},"label":"ok"}`},
		{"no time no label", records.Reading{Device: "d", Values: []records.Value{{Name: "x", Value: -2}}},
			`{"device":"d","values":{"x":-2}}`},
		{"whole second keeps milliseconds", records.Reading{Device: "d", Time: time.Unix(0, 0), Values: []records.Value{{Name: "x", Value: 0}}},
			`{"device":"d","ts":"1970-01-01T00:00:00.000Z","values":{"x":0}}`},
		{"nanoseconds", records.Reading{Device: "d", Time: time.Unix(0, 1), Values: []records.Value{{Name: "x", Value: 1}}},
			`{"device":"d","ts":"1970-01-01T00:00:00.000000001Z","values":{"x":1}}`},
		{"value order kept", records.Reading{Device: "d", Values: []records.Value{{Name: "z", Value: 1}, {Name: "a", Value: 2}, {Name: "m", Value: 3}}},
			`{"device":"d","values":{"z":1,"a":2,"m":3}}`},
		{"exponents like encoding/json", records.Reading{Device: "d", Values: []records.Value{{Name: "a", Value: 1e-7}, {Name: "b", Value: 1e21}, {Name: "c", Value: 1e20}, {Name: "d", Value: math.Copysign(0, -1)}}},
			`{"device":"d","values":{"a":1e-7,"b":1e+21,"c":100000000000000000000,"d":-0}}`},
		{"escapes", records.Reading{Device: "a\"b\\c\n\t\x01", Values: []records.Value{{Name: "é/ü", Value: 1}}, Label: "\u2028"},
			`{"device":"a\"b\\c\n\t\u0001","values":{"é/ü":1},"label":"\u2028"}`},
		{"invalid UTF-8 replaced", records.Reading{Device: "a\xffb", Values: []records.Value{{Name: "x", Value: 1}}},
			`{"device":"a\ufffdb","values":{"x":1}}`},
		{"NaN written as null", records.Reading{Device: "d", Values: []records.Value{{Name: "x", Value: math.NaN()}}},
			`{"device":"d","values":{"x":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendReading([]byte("prefix"), tt.in))
			if got != "prefix"+tt.want {
				t.Errorf("got  %s\nwant prefix%s", got, tt.want)
			}
		})
	}
}

func TestEncodeReading(t *testing.T) {
	ok := []records.Value{{Name: "x", Value: 1}}
	tests := []struct {
		name string
		in   records.Reading
		want error
	}{
		{"valid", records.Reading{Device: "d", Values: ok}, nil},
		{"empty device", records.Reading{Values: ok}, ErrMissingDevice},
		{"no values", records.Reading{Device: "d"}, ErrMissingValues},
		{"NaN", records.Reading{Device: "d", Values: []records.Value{{Name: "x", Value: math.NaN()}}}, ErrNonNumeric},
		{"+Inf", records.Reading{Device: "d", Values: []records.Value{{Name: "x", Value: math.Inf(1)}}}, ErrNonNumeric},
		{"-Inf", records.Reading{Device: "d", Values: []records.Value{{Name: "x", Value: 1}, {Name: "y", Value: math.Inf(-1)}}}, ErrNonNumeric},
		{"empty name", records.Reading{Device: "d", Values: []records.Value{{Name: "", Value: 1}}}, ErrValueName},
		{"duplicate name", records.Reading{Device: "d", Values: []records.Value{{Name: "x", Value: 1}, {Name: "y", Value: 2}, {Name: "x", Value: 3}}}, ErrDuplicateValue},
		{"invalid UTF-8 device", records.Reading{Device: "\xff", Values: ok}, ErrSyntax},
		{"invalid UTF-8 name", records.Reading{Device: "d", Values: []records.Value{{Name: "\xc3", Value: 1}}}, ErrSyntax},
		{"year 10000", records.Reading{Device: "d", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Values: ok}, ErrBadTimestamp},
		{"year -1", records.Reading{Device: "d", Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), Values: ok}, ErrBadTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeReading(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil {
				var r records.Reading
				if err := ParseReading(b, time.Time{}, &r); err != nil {
					t.Fatalf("ParseReading(%s): %v", b, err)
				}
			}
		})
	}
}

func TestEncodeReadingManyDuplicates(t *testing.T) {
	vals := make([]records.Value, 1000)
	for i := range vals {
		vals[i] = records.Value{Name: strings.Repeat("v", i+1), Value: 1}
	}
	if _, err := EncodeReading(records.Reading{Device: "d", Values: vals}); err != nil {
		t.Fatal(err)
	}
	vals[999].Name = vals[500].Name
	if _, err := EncodeReading(records.Reading{Device: "d", Values: vals}); !errors.Is(err, ErrDuplicateValue) {
		t.Fatalf("err = %v, want ErrDuplicateValue", err)
	}
}

func TestErrorMessagesAreShort(t *testing.T) {
	long := strings.Repeat("x", 10000)
	_, err := EncodeReading(records.Reading{Device: "d", Values: []records.Value{{Name: long, Value: math.NaN()}}})
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("error of %d bytes: %.100v", len(err.Error()), err)
	}
}
