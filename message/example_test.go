package message_test

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"time"

	"bytes"

	"github.com/muonml/muon/message"
	"github.com/muonml/muon/records"
)

func ExampleAppendReading() {
	r := records.Reading{
		Device: "press-07",
		Time:   time.Date(2024, 5, 1, 12, 0, 0, 250e6, time.UTC),
		Values: []records.Value{{Name: "temp", Value: 71.5}, {Name: "vib", Value: 0.031}},
		Label:  "ok",
	}
	fmt.Printf("%s\n", message.AppendReading(nil, r))
	// Output:
	// {"device":"press-07","ts":"2024-05-01T12:00:00.250Z","values":{"temp":71.5,"vib":0.031},"label":"ok"}
}

func ExampleEncodeReading() {
	_, err := message.EncodeReading(records.Reading{
		Device: "press-07",
		Values: []records.Value{{Name: "temp", Value: math.NaN()}},
	})
	fmt.Println(errors.Is(err, message.ErrNonNumeric))
	fmt.Println(err)
	// Output:
	// true
	// message: value is not a finite number: value "temp" is NaN, which JSON cannot represent
}

func ExampleParseReading() {
	kafkaTime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var r records.Reading // reuse one per worker
	for _, value := range []string{
		`{"device":"press-07","ts":1714564800250,"values":{"temp":71.5,"vib":0.031}}`,
		`{"device":"press-07","values":{"temp":71.6,"vib":0.029},"label":"ok"}`,
		`{"device":"press-07","values":{"temp":"hot"}}`,
	} {
		if err := message.ParseReading([]byte(value), kafkaTime, &r); err != nil {
			fmt.Println("dead letter:", err)
			continue
		}
		fmt.Printf("%s %s %v label=%q\n", r.Device, r.Time.Format(time.RFC3339Nano), r.Values, r.Label)
	}
	// Output:
	// press-07 2024-05-01T12:00:00.25Z [{temp 71.5} {vib 0.031}] label=""
	// press-07 2024-05-01T12:00:00Z [{temp 71.6} {vib 0.029}] label="ok"
	// dead letter: message: value is not a finite number: value "temp" at byte 38 is a string, want a number
}

func ExampleDecodeImage() {
	img := image.NewGray(image.Rect(0, 0, 4, 2))
	img.SetGray(1, 0, color.Gray{Y: 200})
	var pgm bytes.Buffer
	if err := message.EncodePGM(&pgm, img); err != nil {
		panic(err)
	}
	fmt.Println(message.ContentType(pgm.Bytes()))

	gray, err := message.DecodeImage(pgm.Bytes(), message.DefaultImageLimits)
	fmt.Println(gray.Rect, gray.GrayAt(1, 0).Y, err)

	// A 23-byte file claiming 10^10 pixels is refused from its header.
	_, err = message.DecodeImage([]byte("P5\n100000 100000\n255\n\x00\x00"), message.DefaultImageLimits)
	fmt.Println(errors.Is(err, message.ErrImageTooLarge))
	// Output:
	// image/x-portable-graymap
	// (0,0)-(4,2) 200 <nil>
	// true
}
