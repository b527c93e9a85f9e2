package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The JSON scanner behind Parse: it validates the grammar exactly as
// encoding/json does and hands object members to the spec model, never
// building a tree.

// maxDepth is the nesting limit of Go's encoding/json, which runc uses: a
// deeper document is refused by both.
const maxDepth = 10000

// SyntaxError is a JSON document that is not well formed.
type SyntaxError struct {
	Offset int // byte offset of the problem
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// equalFold is encoding/json's key matching: bytes.EqualFold on the
// decoded key (so "PROCESS" and "proceſs" match "process").
func equalFold(key, field string) bool {
	return strings.EqualFold(key, field)
}

// parser walks JSON bytes. It accepts exactly what encoding/json accepts.
type parser struct {
	data []byte
	pos  int
}

func (p *parser) errf(format string, args ...any) error {
	return &SyntaxError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) ws() {
	for p.pos < len(p.data) && isSpace(p.data[p.pos]) {
		p.pos++
	}
}

// peekNull reports whether the value at p.pos is the literal null.
func (p *parser) peekNull() bool {
	return bytes.HasPrefix(p.data[p.pos:], []byte("null"))
}

// value validates and skips any JSON value at p.pos (after white space).
func (p *parser) value(depth int) error {
	p.ws()
	if p.pos >= len(p.data) {
		return p.errf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth, func() member {
			return func(p *parser, _ string, depth int) error { return p.value(depth) }
		})
	case c == '[':
		return p.array(depth, func(p *parser, depth int) error { return p.value(depth) })
	case c == '"':
		_, _, err := p.str()
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return p.errf("unexpected character %q", c)
	}
}

func (p *parser) literal(lit string) error {
	if !bytes.HasPrefix(p.data[p.pos:], []byte(lit)) {
		return p.errf("invalid literal (expected %s)", lit)
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) number() error {
	d := p.data
	i := p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		p.pos = i
		return p.errf("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.pos = i
			return p.errf("invalid number: no digit after the decimal point")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.pos = i
			return p.errf("invalid number: no digit in the exponent")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	p.pos = i
	return nil
}

// str validates the string at p.pos and returns the byte range of its
// contents (without quotes) and whether it needs decoding (escapes or
// non-ASCII bytes).
func (p *parser) str() (start int, complex bool, err error) {
	d := p.data
	p.pos++ // opening quote
	start = p.pos
	for p.pos < len(d) {
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			return start, complex, nil
		case c == '\\':
			complex = true
			p.pos++
			if p.pos >= len(d) {
				return 0, false, p.errf("unexpected end of input in string escape")
			}
			switch d[p.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.pos++
			case 'u':
				p.pos++
				for k := 0; k < 4; k++ {
					if p.pos >= len(d) || !isHex(d[p.pos]) {
						return 0, false, p.errf("invalid \\u escape in string")
					}
					p.pos++
				}
			default:
				return 0, false, p.errf("invalid escape %q in string", d[p.pos])
			}
		case c < 0x20:
			return 0, false, p.errf("control character %#x in string", c)
		default:
			if c >= utf8.RuneSelf {
				complex = true
			}
			p.pos++
		}
	}
	return 0, false, p.errf("unexpected end of input in string")
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// stringValue reads a string at p.pos and decodes it as encoding/json does
// (escapes decoded, invalid UTF-8 replaced by U+FFFD).
func (p *parser) stringValue() (string, error) {
	begin := p.pos
	start, complex, err := p.str()
	if err != nil {
		return "", err
	}
	if !complex {
		return string(p.data[start : p.pos-1]), nil
	}
	var s string
	if err := json.Unmarshal(p.data[begin:p.pos], &s); err != nil {
		return "", fmt.Errorf("decoding string at byte %d: %w", begin, err)
	}
	return s, nil
}

// object walks the object at p.pos, calling the member handler made by mk
// for every member.
func (p *parser) object(depth int, mk func() member) error {
	depth++
	if depth > maxDepth {
		return p.errf("nesting deeper than %d", maxDepth)
	}
	p.pos++ // {
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return nil
	}
	handle := mk()
	for {
		p.ws()
		if p.pos >= len(p.data) {
			return p.errf("unexpected end of input in object")
		}
		if p.data[p.pos] != '"' {
			return p.errf("expected a string for an object key, found %q", p.data[p.pos])
		}
		key, err := p.stringValue()
		if err != nil {
			return err
		}
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return p.errf("expected ':' after object key")
		}
		p.pos++
		p.ws()
		if p.pos >= len(p.data) {
			return p.errf("unexpected end of input in object")
		}
		if err := handle(p, key, depth); err != nil {
			return err
		}
		p.ws()
		if p.pos >= len(p.data) {
			return p.errf("unexpected end of input in object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return nil
		default:
			return p.errf("expected ',' or '}' in object, found %q", p.data[p.pos])
		}
	}
}

// objectOrNull walks an object, or skips null; any other value is refused
// (runc could not decode it either).
func (p *parser) objectOrNull(depth int, name string, mk func() member) error {
	if p.peekNull() {
		return p.value(depth)
	}
	if p.data[p.pos] != '{' {
		if err := p.value(depth); err != nil {
			return err
		}
		return fmt.Errorf("%s is not a JSON object", name)
	}
	return p.object(depth, mk)
}

// array walks the array at p.pos, calling elem for every element.
func (p *parser) array(depth int, elem func(p *parser, depth int) error) error {
	depth++
	if depth > maxDepth {
		return p.errf("nesting deeper than %d", maxDepth)
	}
	p.pos++ // [
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return nil
	}
	for {
		p.ws()
		if p.pos >= len(p.data) {
			return p.errf("unexpected end of input in array")
		}
		if err := elem(p, depth); err != nil {
			return err
		}
		p.ws()
		if p.pos >= len(p.data) {
			return p.errf("unexpected end of input in array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return nil
		default:
			return p.errf("expected ',' or ']' in array, found %q", p.data[p.pos])
		}
	}
}

// stringArray reads null or an array of strings ([]string in runc: a null
// element decodes to ""). Anything else is refused.
func (p *parser) stringArray(depth int, name string) ([]string, error) {
	if p.peekNull() {
		return nil, p.value(depth)
	}
	if p.data[p.pos] != '[' {
		if err := p.value(depth); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s is not an array of strings", name)
	}
	out := []string{}
	err := p.array(depth, func(p *parser, depth int) error {
		switch {
		case p.data[p.pos] == '"':
			s, err := p.stringValue()
			out = append(out, s)
			return err
		case p.peekNull():
			out = append(out, "")
			return p.value(depth)
		default:
			at := p.pos
			if err := p.value(depth); err != nil {
				return err
			}
			return fmt.Errorf("%s: element at byte %d is not a string", name, at)
		}
	})
	return out, err
}
