package mux

import "encoding/binary"

// appendQuery appends the wire form of a query for name/qtype, class IN
// (RFC 1035 §4.1), with ID 0, the header flags of Mux queries (RD when
// rd, AD, CD when cd) and, when edns, an OPT record asking for udpSize
// (RFC 6891 §6.1.2; DO clear, no options). It reports false, appending
// nothing, for a name it does not take: anything but an absolute name of
// 1–63-octet labels of letters, digits, hyphens and underscores, at most
// 255 octets on the wire. miekg/dns's packer handles those (escapes,
// other characters) and checks them.
//
// It exists because a scan packs a query for every one it sends, and
// miekg/dns's general packer (compression map, reflection-free but
// generic) showed in the scan's profile for a dozen bytes of header and a
// name (docs/performance.md). TestAppendQuery compares its bytes with miekg/dns's.
func appendQuery(b []byte, name string, qtype uint16, rd, cd, edns bool, udpSize uint16) ([]byte, bool) {
	if !plainName(name) {
		return b, false
	}
	var flags uint16 = 1 << 5 // AD (RFC 6840 §5.7)
	if rd {
		flags |= 1 << 8
	}
	if cd {
		flags |= 1 << 4
	}
	var arcount uint16
	if edns {
		arcount = 1
	}
	b = binary.BigEndian.AppendUint16(b, 0) // ID, set per attempt
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, 1) // QDCOUNT
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, arcount)
	if name != "." {
		start := 0
		for i := 0; i < len(name); i++ {
			if name[i] == '.' {
				b = append(b, byte(i-start))
				b = append(b, name[start:i]...)
				start = i + 1
			}
		}
	}
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, qtype)
	b = binary.BigEndian.AppendUint16(b, 1) // class IN
	if edns {
		b = append(b, 0)                         // root owner
		b = binary.BigEndian.AppendUint16(b, 41) // OPT
		b = binary.BigEndian.AppendUint16(b, udpSize)
		b = binary.BigEndian.AppendUint32(b, 0) // extended RCODE, version 0, DO clear
		b = binary.BigEndian.AppendUint16(b, 0) // no options
	}
	return b, true
}

// plainName reports an absolute name appendQuery packs itself: "." or
// labels of 1–63 letters, digits, hyphens and underscores, each followed
// by a dot, 255 octets at most in wire form (RFC 1035 §2.3.4).
func plainName(name string) bool {
	if name == "." {
		return true
	}
	if len(name) == 0 || len(name) > 254 || name[len(name)-1] != '.' {
		return false
	}
	label := 0
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '.':
			if label == 0 || label > 63 {
				return false
			}
			label = 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			label++
		default:
			return false
		}
	}
	return true
}

// padBlock is the size that padQuery pads queries to a multiple of: the
// block RFC 8467 §4.1 recommends for queries.
const padBlock = 128

// padding is padBlock zero octets: what padQuery appends from.
var padding [padBlock]byte

// padQuery pads a query packed by appendQuery with an OPT record (the
// last record, with no options yet) to the next multiple of padBlock
// octets with an EDNS(0) Padding option (RFC 7830; octets 0x00, §3). The
// Mux pads its queries so that they all have one size and leave in one
// segmented send (sendSegments); servers answer them unpadded, as both
// RFCs leave padding replies to encrypted transports.
func padQuery(b []byte) []byte {
	const optionHeader = 4 // OPTION-CODE, OPTION-LENGTH
	n := len(b)
	total := (n + optionHeader + padBlock - 1) / padBlock * padBlock
	fill := total - n - optionHeader
	binary.BigEndian.PutUint16(b[n-2:], uint16(optionHeader+fill)) // the OPT's RDLENGTH
	b = binary.BigEndian.AppendUint16(b, 12)                       // OPTION-CODE: Padding
	b = binary.BigEndian.AppendUint16(b, uint16(fill))
	return append(b, padding[:fill]...)
}
