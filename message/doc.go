// Package message is the contract between Kafka producers and muon: how a
// sensor reading (a records.Reading) or an image travels as a Kafka record,
// and how muon decodes it again.
//
// # Sensor readings
//
// A reading is a JSON object in the record value; the record key is the
// device name:
//
//	{"device": "press-07", "ts": "2024-05-01T12:00:00.250Z",
//	  "values": {"temp": 71.5, "vib": 0.031}, "label": "ok"}
//
// The fields are:
//
//   - device: required, a non-empty string.
//   - ts: optional, an RFC 3339 string with a zone (as accepted by
//     [time.Time.UnmarshalText]) or an integer number of milliseconds since
//     the Unix epoch. When ts is absent or null the Kafka record timestamp is
//     used instead. Times must fall within the years 0000–9999 in UTC.
//   - values: required, an object with at least one entry; every entry is a
//     finite JSON number and names are non-empty and unique. Their order is
//     kept.
//   - label: optional, a string or null.
//
// Other fields are ignored, so producers may add their own. Field names are
// case-sensitive. [AppendReading] and [EncodeReading] write this format and
// [ParseReading] reads it; the parser is hand-written because it sits on the
// hot path of the decode stage, and it is strict because its input comes from
// the network: it accepts only valid UTF-8 JSON no larger than
// [MaxReadingBytes], and every error wraps one of the sentinel errors of this
// package with the field and byte offset at fault, so that a dead-letter
// header tells a person what to fix.
//
// # Images
//
// An image record carries the encoded file (PNG, JPEG or binary/ASCII PGM)
// unchanged in the value, and the headers [HeaderDevice], [HeaderLabel]
// (optional) and [HeaderContentType]. [DecodeImage] checks the size and the
// header dimensions against [ImageLimits] before it decodes any pixel, so a
// small file claiming a huge image is refused without allocating for it, and
// returns 8-bit grayscale. Importing this package registers the PGM format
// with package image.
package message
