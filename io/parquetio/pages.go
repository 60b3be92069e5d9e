package parquetio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Limits of the page scan.
const (
	// maxPageBytes bounds a page's declared uncompressed size: parquet-go
	// allocates it before decompressing. A row of the largest dimension
	// (8 MiB) must fit one page.
	maxPageBytes = 256 << 20
	// maxPageValues bounds a page's declared number of values, which sizes
	// the level buffers.
	maxPageValues = 1 << 26
	// maxPageHeaderBytes bounds a page header (statistics included).
	maxPageHeaderBytes = 1 << 20
	// maxThriftDepth bounds the nesting of a page header's structs.
	maxThriftDepth = 16
)

// checkPages checks every column chunk and page header of f before
// parquet-go decodes a page, as its decoders trust what headers declare:
// the chunk's codec is one the archive writes (parquet-go's LZ4 decoder
// doubles its buffer forever on bad input), chunks and pages lie inside
// the file, sizes and counts are bounded, and every page has a CRC, so
// that damage to a page's body is caught before it is decompressed.
func checkPages(r io.ReaderAt, size int64, f *parquet.File) error {
	meta := f.Metadata()
	var buf []byte
	for g, rg := range meta.RowGroups {
		for c, cc := range rg.Columns {
			md := &cc.MetaData
			if cc.FilePath != "" {
				return fmt.Errorf("row group %d, column %d: data in another file %q", g, c, cc.FilePath)
			}
			if md.Codec != format.Zstd && md.Codec != format.Uncompressed {
				return fmt.Errorf("row group %d, column %d: codec %s, the archive writes ZSTD", g, c, md.Codec)
			}
			// Where parquet-go starts reading the chunk.
			start := md.DataPageOffset
			if md.DictionaryPageOffset != 0 {
				start = md.DictionaryPageOffset
			}
			end := start + md.TotalCompressedSize
			if start < 4 || md.TotalCompressedSize < 0 || end > size-8 || end < start {
				return fmt.Errorf("row group %d, column %d: chunk at %d+%d outside a file of %d bytes", g, c, start, md.TotalCompressedSize, size)
			}
			var values int64
			dataStart := false // a page starts at DataPageOffset: parquet-go seeks there after the dictionary
			for pos := start; pos < end; {
				dataStart = dataStart || pos == md.DataPageOffset
				// Headers take tens of bytes: read a little, more if it ends early.
				var h pageHeader
				var hlen int
				for n := min(end-pos, 256); ; n = min(end-pos, n*16, maxPageHeaderBytes) {
					if int64(cap(buf)) < n {
						buf = make([]byte, n)
					}
					buf = buf[:n]
					if _, err := r.ReadAt(buf, pos); err != nil {
						return fmt.Errorf("row group %d, column %d: page header at %d: %w", g, c, pos, err)
					}
					var err error
					if h, hlen, err = parsePageHeader(buf); err == nil {
						break
					} else if n == min(end-pos, maxPageHeaderBytes) {
						return fmt.Errorf("row group %d, column %d: page header at %d: %w", g, c, pos, err)
					}
				}
				if h.compressed < 0 || h.uncompressed < 0 || h.uncompressed > maxPageBytes || int64(h.compressed) > end-pos-int64(hlen) {
					return fmt.Errorf("row group %d, column %d: page at %d of %d bytes (%d uncompressed) in a chunk ending at %d", g, c, pos, h.compressed, h.uncompressed, end)
				}
				if h.values < 0 || h.values > maxPageValues || h.levels < 0 || h.levels > int64(h.compressed) {
					return fmt.Errorf("row group %d, column %d: page at %d: %d values, %d bytes of levels", g, c, pos, h.values, h.levels)
				}
				if !h.crc {
					return fmt.Errorf("row group %d, column %d: page at %d has no CRC", g, c, pos)
				}
				if h.crcValue == 0 {
					// parquet-go takes a zero CRC for none: check it here.
					body := make([]byte, h.compressed)
					if _, err := r.ReadAt(body, pos+int64(hlen)); err != nil || crc32.ChecksumIEEE(body) != 0 {
						return fmt.Errorf("row group %d, column %d: page at %d: CRC mismatch", g, c, pos)
					}
				}
				if h.kind == format.DataPage || h.kind == format.DataPageV2 {
					values += int64(h.values)
				}
				if md.Codec == format.Zstd && !h.uncompressedV2 {
					// The levels of a v2 page come first, uncompressed.
					at, n := pos+int64(hlen)+h.levels, int64(h.compressed)-h.levels
					if err := checkZstdFrame(r, at, n, int64(h.uncompressed)-h.levels); err != nil {
						return fmt.Errorf("row group %d, column %d: page at %d: %w", g, c, pos, err)
					}
				}
				pos += int64(hlen) + int64(h.compressed)
			}
			if !dataStart {
				return fmt.Errorf("row group %d, column %d: no page starts at the data page offset %d", g, c, md.DataPageOffset)
			}
			if values != md.NumValues {
				return fmt.Errorf("row group %d, column %d: pages hold %d values, the metadata says %d", g, c, values, md.NumValues)
			}
		}
	}
	return nil
}

// pageHeader is what checkPages needs of a format.PageHeader.
type pageHeader struct {
	kind                     format.PageType
	uncompressed, compressed int32
	crc                      bool
	crcValue                 int32
	values                   int32 // of the data or dictionary page header
	levels                   int64 // bytes of levels before a v2 page's data
	uncompressedV2           bool  // a v2 page whose data is not compressed
}

// checkZstdFrame checks the header of the zstd frame of n bytes at at: a
// frame that declares its content size (the decoder allocates it) must not
// declare more than the page's uncompressed size, max.
func checkZstdFrame(r io.ReaderAt, at, n, max int64) error {
	if n == 0 {
		return nil
	}
	var b [18]byte // magic, descriptor, window, dictionary id, content size
	head := b[:min(n, int64(len(b)))]
	if _, err := r.ReadAt(head, at); err != nil {
		return fmt.Errorf("zstd frame: %w", err)
	}
	if len(head) < 6 || binary.LittleEndian.Uint32(head) != 0xFD2FB528 {
		return fmt.Errorf("not a zstd frame")
	}
	fhd := head[4]
	single := fhd&0x20 != 0
	i := 5
	if !single {
		i++ // window descriptor
	}
	i += []int{0, 1, 2, 4}[fhd&3] // dictionary id
	size := []int{0, 2, 4, 8}[fhd>>6]
	if size == 0 && single {
		size = 1
	}
	if size == 0 {
		return nil // no content size: the decoder grows its output as it goes
	}
	if i+size > len(head) {
		return fmt.Errorf("zstd frame header cut short")
	}
	var fcs uint64
	for k := size - 1; k >= 0; k-- {
		fcs = fcs<<8 | uint64(head[i+k])
	}
	if size == 2 {
		fcs += 256
	}
	if fcs > uint64(max) {
		return fmt.Errorf("zstd frame of %d bytes in a page of %d", fcs, max)
	}
	return nil
}

var errThrift = errors.New("malformed thrift")

// thrift reads the Thrift compact protocol with every length checked
// against the bytes there, allocating nothing.
type thrift struct {
	b   []byte
	pos int
	err error
}

func (t *thrift) fail() {
	if t.err == nil {
		t.err = errThrift
	}
}

func (t *thrift) byte() byte {
	if t.err != nil || t.pos >= len(t.b) {
		t.fail()
		return 0
	}
	t.pos++
	return t.b[t.pos-1]
}

func (t *thrift) uvarint() uint64 {
	if t.err != nil {
		return 0
	}
	v, n := binary.Uvarint(t.b[t.pos:])
	if n <= 0 {
		t.fail()
		return 0
	}
	t.pos += n
	return v
}

func (t *thrift) varint() int64 {
	u := t.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (t *thrift) skipBytes(n uint64) {
	if t.err != nil || n > uint64(len(t.b)-t.pos) {
		t.fail()
		return
	}
	t.pos += int(n)
}

// Compact protocol types.
const (
	ctStop = iota
	ctTrue
	ctFalse
	ctByte
	ctI16
	ctI32
	ctI64
	ctDouble
	ctBinary
	ctList
	ctSet
	ctMap
	ctStruct
)

// skip skips a value of type typ.
func (t *thrift) skip(typ byte, depth int) {
	if depth > maxThriftDepth {
		t.fail()
		return
	}
	switch typ {
	case ctTrue, ctFalse:
	case ctByte:
		t.byte()
	case ctI16, ctI32, ctI64:
		t.uvarint()
	case ctDouble:
		t.skipBytes(8)
	case ctBinary:
		t.skipBytes(t.uvarint())
	case ctList, ctSet:
		h := t.byte()
		n, elem := uint64(h>>4), h&0x0f
		if n == 15 {
			n = t.uvarint()
		}
		if n > uint64(len(t.b)-t.pos) { // every element takes a byte at least
			t.fail()
		}
		for i := uint64(0); i < n && t.err == nil; i++ {
			if elem == ctTrue || elem == ctFalse {
				t.byte() // booleans in lists take a byte each
			} else {
				t.skip(elem, depth+1)
			}
		}
	case ctMap:
		n := t.uvarint()
		if n == 0 {
			return
		}
		kv := t.byte()
		if n > uint64(len(t.b)-t.pos) {
			t.fail()
		}
		for i := uint64(0); i < n && t.err == nil; i++ {
			t.skip(kv>>4, depth+1)
			t.skip(kv&0x0f, depth+1)
		}
	case ctStruct:
		t.fields(depth+1, func(int16, byte) bool { return false })
	default:
		t.fail()
	}
}

// fields walks a struct's fields, calling fn with each field's id and
// type; fn reads the value and returns true, or returns false to have it
// skipped.
func (t *thrift) fields(depth int, fn func(id int16, typ byte) bool) {
	if depth > maxThriftDepth {
		t.fail()
		return
	}
	var id int16
	for t.err == nil {
		h := t.byte()
		typ := h & 0x0f
		if typ == ctStop {
			return
		}
		if d := h >> 4; d != 0 {
			id += int16(d)
		} else {
			id = int16(t.varint())
		}
		if !fn(id, typ) {
			t.skip(typ, depth)
		}
	}
}

func (t *thrift) i32(typ byte) int32 {
	if typ != ctI32 {
		t.fail()
		return 0
	}
	return int32(t.varint())
}

// parsePageHeader reads a format.PageHeader at the start of b and returns
// the fields checkPages needs and the header's length.
func parsePageHeader(b []byte) (pageHeader, int, error) {
	t := &thrift{b: b}
	var h pageHeader
	h.kind = -1
	seen := 0
	t.fields(0, func(id int16, typ byte) bool {
		switch id {
		case 1:
			h.kind = format.PageType(t.i32(typ))
			seen |= 1
		case 2:
			h.uncompressed = t.i32(typ)
			seen |= 2
		case 3:
			h.compressed = t.i32(typ)
			seen |= 4
		case 4:
			h.crcValue = t.i32(typ)
			h.crc = true
		case 5, 7, 8: // data page v1, dictionary page, data page v2
			if typ != ctStruct {
				t.fail()
				return true
			}
			var def, rep int32
			t.fields(1, func(fid int16, ftyp byte) bool {
				switch {
				case fid == 1:
					h.values = t.i32(ftyp)
				case id == 8 && fid == 5:
					def = t.i32(ftyp)
				case id == 8 && fid == 6:
					rep = t.i32(ftyp)
				case id == 8 && fid == 7:
					if ftyp != ctTrue && ftyp != ctFalse {
						t.fail()
					}
					h.uncompressedV2 = ftyp == ctFalse
				default:
					return false
				}
				return true
			})
			if def < 0 || rep < 0 {
				t.fail()
			}
			h.levels = int64(def) + int64(rep)
		default:
			return false
		}
		return true
	})
	if t.err != nil {
		return pageHeader{}, 0, t.err
	}
	if seen != 7 {
		return pageHeader{}, 0, fmt.Errorf("%w: page header without its type or sizes", errThrift)
	}
	switch h.kind {
	case format.DataPage, format.DataPageV2, format.DictionaryPage:
	default:
		return pageHeader{}, 0, fmt.Errorf("page type %d", h.kind)
	}
	return h, t.pos, nil
}
