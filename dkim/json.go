package dkim

import (
	"strconv"

	"github.com/mxtrace/mxtrace/internal/jsonenc"
)

// AppendJSON appends r as a JSON object, byte for byte what encoding/json
// writes for *Result with SetEscapeHTML(false) (without the Encoder's
// newline); nil is null.
//
// Written by hand for the scan's sake; package jsonenc says why, and how
// check's tests keep it in step with encoding/json.
func (r *Result) AppendJSON(b []byte) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"domain":`...)
	b = jsonenc.AppendString(b, r.Domain)
	b = append(b, `,"probed":`...)
	b = jsonenc.AppendStrings(b, r.Probed)
	if r.NoKeyTree {
		b = append(b, `,"no_key_tree":true`...)
	}
	b = append(b, `,"keys":`...)
	b = jsonenc.AppendArray(b, r.Keys, (*Key).appendJSON)
	if len(r.Failed) != 0 {
		b = append(b, `,"failed":`...)
		b = jsonenc.AppendStrings(b, r.Failed)
	}
	return append(b, '}')
}

func (k *Key) appendJSON(b []byte) []byte {
	b = append(b, `{"selector":`...)
	b = jsonenc.AppendString(b, k.Selector)
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, k.Name)
	b = append(b, `,"text":`...)
	b = jsonenc.AppendString(b, k.Text)
	if k.Record != nil {
		b = append(b, `,"record":`...)
		b = k.Record.appendJSON(b)
	}
	if len(k.Problems) != 0 {
		b = append(b, `,"problems":`...)
		b = jsonenc.AppendStrings(b, k.Problems)
	}
	return append(b, '}')
}

func (r *Record) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if r.Version != "" {
		b = append(b, `"v":`...)
		b = jsonenc.AppendString(b, r.Version)
		b = append(b, ',')
	}
	b = append(b, `"k":`...)
	b = jsonenc.AppendString(b, string(r.KeyType))
	for _, list := range []struct {
		name string
		ss   []string
	}{{`,"h":`, r.Hashes}, {`,"s":`, r.Services}, {`,"t":`, r.Flags}} {
		if len(list.ss) != 0 {
			b = append(b, list.name...)
			b = jsonenc.AppendStrings(b, list.ss)
		}
	}
	if r.Notes != "" {
		b = append(b, `,"n":`...)
		b = jsonenc.AppendString(b, r.Notes)
	}
	if len(r.Unknown) != 0 {
		b = append(b, `,"unknown":`...)
		b = jsonenc.AppendArray(b, r.Unknown, (*Tag).appendJSON)
	}
	b = append(b, `,"p":`...)
	b = jsonenc.AppendBytes(b, r.PublicKey)
	b = append(b, `,"bits":`...)
	b = strconv.AppendInt(b, int64(r.Bits), 10)
	return append(b, '}')
}

func (t *Tag) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = jsonenc.AppendString(b, t.Name)
	b = append(b, `,"value":`...)
	b = jsonenc.AppendString(b, t.Value)
	return append(b, '}')
}
