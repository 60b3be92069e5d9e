package message

import "errors"

// Errors returned by this package. They are always wrapped with context (the
// field, the byte offset, the limit exceeded); test for them with [errors.Is].
var (
	// ErrTooLarge means a reading is longer than [MaxReadingBytes].
	ErrTooLarge = errors.New("message: reading too large")
	// ErrSyntax means the bytes are not one JSON object in valid UTF-8: bad
	// JSON, a truncated message, data after the object, nesting deeper than
	// 10000 levels. EncodeReading also returns it for strings that are not
	// valid UTF-8.
	ErrSyntax = errors.New("message: invalid JSON")
	// ErrFieldType means device, values or label has the wrong JSON type.
	ErrFieldType = errors.New("message: wrong field type")
	// ErrDuplicateField means device, ts, values or label appears twice;
	// JSON parsers disagree on which copy wins, so neither is trusted.
	ErrDuplicateField = errors.New("message: duplicate field")
	// ErrMissingDevice means the device field is absent, null or empty.
	ErrMissingDevice = errors.New("message: missing device")
	// ErrMissingValues means the values field is absent, null or {}.
	ErrMissingValues = errors.New("message: missing values")
	// ErrValueName means a value has an empty name.
	ErrValueName = errors.New("message: empty value name")
	// ErrDuplicateValue means two values have the same name.
	ErrDuplicateValue = errors.New("message: duplicate value name")
	// ErrNonNumeric means a value is not a finite number: a string, null,
	// true, an object, a number beyond the float64 range, or (when encoding)
	// NaN or ±Inf, which JSON cannot represent.
	ErrNonNumeric = errors.New("message: value is not a finite number")
	// ErrBadTimestamp means ts is neither an RFC 3339 string with a zone nor
	// an integer of epoch milliseconds, or lies outside the years 0000–9999.
	ErrBadTimestamp = errors.New("message: bad timestamp")

	// ErrImageFormat means the bytes are not PNG, JPEG or PGM.
	ErrImageFormat = errors.New("message: unsupported image format")
	// ErrImageTooLarge means the file or its declared dimensions exceed the
	// ImageLimits in force.
	ErrImageTooLarge = errors.New("message: image too large")
	// ErrImageCorrupt means the image header or pixel data cannot be decoded
	// (truncated file, bad header, sample above maxval, ...).
	ErrImageCorrupt = errors.New("message: corrupt image")
)
