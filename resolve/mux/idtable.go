package mux

// idTable holds a socket's queries in flight by their 16-bit message ID
// (RFC 1035 §4.1.1): open addressing with linear probing, kept at most
// half full, where an ID's home slot is its own low bits. The IDs are
// drawn at random (claim), so they need no hashing, and a reply's ID
// costs a mask, a load and a compare or two, with nothing to hash and no
// control bytes to match.
//
// Why not a map: in profiles of the audit straight at Knot
// (docs/performance.md, "The sockets' ID table") the socket's
// map[uint16]*query took 2 to 5 % of the scanner's CPU, an insert, two or
// three look-ups and a delete per query; BenchmarkIDTable does a query's
// share in 90 ns, BenchmarkIDMap in 204. Why not an array of all 65,536 IDs: eight sockets'
// arrays were 4 MB of pointers that the collector scanned at every cycle
// for the few hundred queries in flight (docs/performance.md, "Memory").
// This table is sized by what is in flight: 64 slots to begin with,
// doubled when half full, so eight sockets sharing 4,096 queries hold
// 16 kB of slots each.
type idTable struct {
	slots []idSlot // len is a power of two; p == nil: free
	n     int      // slots in use
}

type idSlot struct {
	p  *query
	id uint16
}

// minTableSlots is an empty table's size.
const minTableSlots = 64

// get returns the query under id, or nil.
func (t *idTable) get(id uint16) *query {
	if t.n == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := int(id) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.p == nil || s.id == id {
			return s.p
		}
	}
}

// put files p under id, which must be free.
func (t *idTable) put(id uint16, p *query) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := len(t.slots) - 1
	i := int(id) & mask
	for t.slots[i].p != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = idSlot{p: p, id: id}
	t.n++
}

// grow doubles the slots (or makes the first ones) and files the queries
// again.
func (t *idTable) grow() {
	old := t.slots
	t.slots = make([]idSlot, max(minTableSlots, 2*len(old)))
	t.n = 0
	for _, s := range old {
		if s.p != nil {
			t.put(s.id, s.p)
		}
	}
}

// remove takes id out of the table, if it is there. Deletion by backward
// shift (Knuth, TAOCP vol. 3, §6.4, Algorithm R): the entries after the
// hole that probed past it move back into it, so a look-up still stops
// at the first free slot and the table needs no tombstones.
func (t *idTable) remove(id uint16) {
	if t.n == 0 {
		return
	}
	mask := len(t.slots) - 1
	i := int(id) & mask
	for {
		s := &t.slots[i]
		if s.p == nil {
			return
		}
		if s.id == id {
			break
		}
		i = (i + 1) & mask
	}
	t.n--
	for j := (i + 1) & mask; t.slots[j].p != nil; j = (j + 1) & mask {
		// The entry at j may fill the hole at i only if its home slot
		// is not in (i, j], cyclically: otherwise a look-up from its
		// home would stop at i's hole before reaching it.
		home := int(t.slots[j].id) & mask
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = idSlot{}
}

// drain calls f for each query in the table with its ID, in no order, then
// empties the table.
func (t *idTable) drain(f func(id uint16, p *query)) {
	for i := range t.slots {
		if s := t.slots[i]; s.p != nil {
			t.slots[i] = idSlot{}
			f(s.id, s.p)
		}
	}
	t.n = 0
}
