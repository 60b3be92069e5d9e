package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is a problem with a spec, at a field path and line.
type Error struct {
	File string
	Line int    // 0 when the field is missing, -1 when it came from an override
	Path string // dotted field path, e.g. source.topics[0]
	Err  error
}

func (e *Error) Error() string {
	loc := e.File
	switch {
	case e.Line > 0:
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	case e.Line < 0:
		loc = e.File + " (--set)"
	}
	if e.Path == "" {
		return fmt.Sprintf("%s: %v", loc, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", loc, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Sentinel errors wrapped by Error.
var (
	// ErrUnknownField means the spec names a field muon does not have.
	ErrUnknownField = errors.New("unknown field")
	// ErrType means a value has the wrong type.
	ErrType = errors.New("wrong type")
	// ErrRequired means a required field is missing or empty.
	ErrRequired = errors.New("required field missing")
	// ErrValue means a value is out of range or not one of the allowed ones.
	ErrValue = errors.New("bad value")
	// ErrOverride means a --set override is malformed.
	ErrOverride = errors.New("bad override")
)

// Load reads, overrides, defaults and validates the spec at path.
// Overrides are "path=value" with a dotted path (source.topics=[a,b],
// replay.0.rate=100) and a YAML value.
func Load(path string, overrides ...string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("job spec: %w", err)
	}
	return Parse(path, data, overrides...)
}

// Parse is Load for a spec already in memory; name is used in errors.
func Parse(name string, data []byte, overrides ...string) (*Spec, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{File: name, Line: yamlErrLine(err), Err: fmt.Errorf("not valid YAML: %w", err)}
	}
	// One file is one job: a second document would be silently ignored.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &Error{File: name, Line: yamlErrLine(err), Err: fmt.Errorf("not valid YAML: %w", err)}
		}
		if !emptyDocument(&next) {
			return nil, &Error{File: name, Line: next.Line, Err: fmt.Errorf("%w: a second YAML document (after ---): a spec file holds one job; pass each job with its own --config", ErrValue)}
		}
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	if doc.Kind == 0 { // empty file
		root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Line: root.Line, Err: fmt.Errorf("%w: a job spec is a mapping of fields, got %s", ErrType, kindName(root))}
	}
	for _, o := range overrides {
		if err := applyOverride(root, o); err != nil {
			return nil, &Error{File: name, Err: err}
		}
	}
	var s Spec
	d := decoder{file: name}
	d.decode(root, reflect.ValueOf(&s).Elem(), "")
	if d.err != nil {
		return nil, d.err
	}
	s.applyDefaults(func(path string) bool { _, ok := d.lines[path]; return ok })
	if p, err := s.check(); err != nil {
		return nil, &Error{File: name, Line: d.lines[p], Path: p, Err: fmt.Errorf("%w: %v", ErrValue, err)}
	}
	return &s, nil
}

// emptyDocument reports whether a YAML document holds nothing (a "---"
// with nothing after it).
func emptyDocument(n *yaml.Node) bool {
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode || c.Tag != "!!null" || c.Value != "" {
			return false
		}
	}
	return true
}

func yamlErrLine(err error) int {
	// yaml.v3 messages look like "yaml: line 7: ..."
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		rest := msg[i+5:]
		if j := strings.IndexByte(rest, ':'); j > 0 {
			if n, err := strconv.Atoi(rest[:j]); err == nil {
				return n
			}
		}
	}
	return 0
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

var (
	durationType = reflect.TypeOf(Duration(0))
	bytesType    = reflect.TypeOf(Bytes(0))
	timeType     = reflect.TypeOf(time.Time{})
)

// decoder walks YAML nodes into a value by reflection, keeping the first
// error and the line of every field it sets.
type decoder struct {
	file  string
	err   *Error
	lines map[string]int
}

func (d *decoder) fail(n *yaml.Node, path string, err error) {
	if d.err == nil {
		line := 0
		if n != nil {
			line = n.Line
		}
		d.err = &Error{File: d.file, Line: line, Path: path, Err: err}
	}
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.err != nil {
		return
	}
	if d.lines == nil {
		d.lines = map[string]int{}
	}
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // leave the zero value; required checks catch it
	}
	switch {
	case v.Type() == durationType:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, fmt.Errorf("%w: want a duration like 500ms or 2s, got %s", ErrType, kindName(n)))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.fail(n, path, fmt.Errorf("%w: want a duration like 500ms or 2s, got %q", ErrType, n.Value))
			return
		}
		v.SetInt(int64(dur))
		return
	case v.Type() == bytesType:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, fmt.Errorf("%w: want a size like 64MiB, 1GiB or a number of bytes, got %s", ErrType, kindName(n)))
			return
		}
		b, err := ParseBytes(n.Value)
		if err != nil {
			d.fail(n, path, fmt.Errorf("%w: %v", ErrType, err))
			return
		}
		v.SetInt(int64(b))
		return
	case v.Type() == timeType:
		t, err := parseTime(n)
		if err != nil {
			d.fail(n, path, err)
			return
		}
		v.Set(reflect.ValueOf(t))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if v.Type().Elem().Kind() == reflect.String && n.Kind == yaml.ScalarNode {
				// a single string where a list is expected: accept it
				v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), reflect.ValueOf(n.Value)))
				return
			}
			d.fail(n, path, fmt.Errorf("%w: want a list, got %s", ErrType, kindName(n)))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, fmt.Errorf("%w: want a mapping, got %s", ErrType, kindName(n)))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := reflect.New(v.Type().Key()).Elem()
			d.decode(n.Content[i], k, path+"."+n.Content[i].Value)
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(n.Content[i+1], e, path+"."+n.Content[i].Value)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, fmt.Errorf("%w: want a string, got %s", ErrType, kindName(n)))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.fail(n, path, fmt.Errorf("%w: want true or false, got %s", ErrType, kindName(n)))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.fail(n, path, fmt.Errorf("%w: want a whole number, got %s", ErrType, kindName(n)))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if special := strings.ToLower(strings.TrimLeft(n.Value, "+-")); special == ".nan" || special == ".inf" {
			f, err = math.NaN(), nil // YAML's spellings of NaN and ±Inf
		}
		if n.Kind != yaml.ScalarNode || err != nil {
			d.fail(n, path, fmt.Errorf("%w: want a number, got %s", ErrType, kindName(n)))
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			// NaN passes every bound check after this one.
			d.fail(n, path, fmt.Errorf("%w %q: want a finite number", ErrValue, n.Value))
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("configs: unsupported field type %s at %s", v.Type(), path))
	}
}

func parseTime(n *yaml.Node) (time.Time, error) {
	if n.Kind == yaml.ScalarNode {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, n.Value); err == nil {
				return t.UTC(), nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("%w: want a time like 2024-01-01T00:00:00Z, got %s", ErrType, kindName(n))
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, fmt.Errorf("%w: want a mapping of fields, got %s", ErrType, kindName(n)))
		return
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		name := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		if !ok {
			sort.Strings(names)
			d.fail(k, join(path, k.Value), fmt.Errorf("%w; %s has %s", ErrUnknownField, orRoot(path), strings.Join(names, ", ")))
			return
		}
		if seen[k.Value] {
			d.fail(k, join(path, k.Value), fmt.Errorf("%w: field given twice", ErrValue))
			return
		}
		seen[k.Value] = true
		fp := join(path, k.Value)
		d.lines[fp] = k.Line
		d.decode(val, v.Field(idx), fp)
		if d.err != nil {
			return
		}
		d.checkTags(val, t.Field(idx), v.Field(idx), fp)
	}
	for _, name := range names {
		f := t.Field(fields[name])
		if f.Tag.Get("required") == "true" && (!seen[name] || v.Field(fields[name]).IsZero()) {
			line := d.lines[path]
			if path == "" {
				line = 1
			}
			d.fail(&yaml.Node{Line: line}, join(path, name), fmt.Errorf("%w (%s needs it)", ErrRequired, orRoot(path)))
			return
		}
	}
}

func orRoot(path string) string {
	if path == "" {
		return "the spec"
	}
	return path
}

func (d *decoder) checkTags(n *yaml.Node, f reflect.StructField, v reflect.Value, path string) {
	if enum := f.Tag.Get("enum"); enum != "" && v.Kind() == reflect.String && v.String() != "" {
		allowed := strings.Split(enum, ",")
		for _, a := range allowed {
			if v.String() == a {
				return
			}
		}
		d.fail(n, path, fmt.Errorf("%w %q: want one of %s", ErrValue, v.String(), strings.Join(allowed, ", ")))
		return
	}
	var x float64
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		x = float64(v.Int())
	case reflect.Float64:
		x = v.Float()
	}
	if m := f.Tag.Get("min"); m != "" {
		if lo, _ := strconv.ParseFloat(m, 64); x < lo {
			d.fail(n, path, fmt.Errorf("%w %v: must be at least %s", ErrValue, x, m))
			return
		}
	}
	if m := f.Tag.Get("max"); m != "" {
		if hi, _ := strconv.ParseFloat(m, 64); x > hi {
			d.fail(n, path, fmt.Errorf("%w %v: must be at most %s", ErrValue, x, m))
		}
	}
}

// applyOverride sets path=value in the YAML tree, creating mappings as
// needed; list elements are addressed by index (replay.0.rate).
func applyOverride(root *yaml.Node, o string) error {
	eq := strings.IndexByte(o, '=')
	if eq <= 0 {
		return fmt.Errorf("%w %q: want path=value, e.g. kafka.brokers=127.0.0.1:9092", ErrOverride, o)
	}
	path, raw := o[:eq], o[eq+1:]
	var val yaml.Node
	if err := yaml.Unmarshal([]byte(raw), &val); err != nil {
		return fmt.Errorf("%w %q: value is not YAML: %v", ErrOverride, o, err)
	}
	newNode := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	if val.Kind == yaml.DocumentNode && len(val.Content) == 1 {
		newNode = val.Content[0]
	}
	markOverride(newNode)
	parts := strings.Split(path, ".")
	cur := root
	for i, p := range parts {
		last := i == len(parts)-1
		switch cur.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for j := 0; j+1 < len(cur.Content); j += 2 {
				if cur.Content[j].Value == p {
					next = cur.Content[j+1]
					if last {
						cur.Content[j+1] = newNode
					}
				}
			}
			if next == nil {
				next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
				if last {
					next = newNode
				}
				cur.Content = append(cur.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p}, next)
			}
			cur = next
		case yaml.SequenceNode:
			idx, err := strconv.Atoi(p)
			if err != nil || idx < 0 || idx >= len(cur.Content) {
				return fmt.Errorf("%w %q: %q is not an index of a list of %d", ErrOverride, o, p, len(cur.Content))
			}
			if last {
				cur.Content[idx] = newNode
			}
			cur = cur.Content[idx]
		default:
			return fmt.Errorf("%w %q: %s is not a mapping or list", ErrOverride, o, strings.Join(parts[:i], "."))
		}
	}
	return nil
}

// markOverride sets the line of n and everything under it to -1, so errors
// point at --set rather than at a line of the file.
func markOverride(n *yaml.Node) {
	n.Line = -1
	for _, c := range n.Content {
		markOverride(c)
	}
}
