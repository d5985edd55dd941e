package resolve

import "context"

// LookupAsync implements Async: an answer in the cache is passed to done at
// once, a question already in flight gets done called when its query ends,
// and any other question is asked of the next resolver, without waiting
// when that resolver is Async (AsyncOf), else on a goroutine.
func (c *Cache) LookupAsync(q Question, done func(*Answer, error)) {
	sh := c.shard(q)
	sh.mu.Lock()
	e, ok := c.get(sh, q)
	if ok && e.call == nil {
		a := e.answer
		sh.hits++
		sh.mu.Unlock()
		done(a, nil)
		return
	}
	if ok {
		e.call.waiters = append(e.call.waiters, done)
		sh.joined++
		sh.mu.Unlock()
		return
	}
	e = &cacheEntry{q: q, shard: sh, call: c.newCall(done)}
	sh.entries[q] = e
	sh.misses++
	sh.mu.Unlock()
	end := func(a *Answer, err error) { c.complete(e, a, err) }
	if next, ok := AsyncOf(c.next); ok {
		next.LookupAsync(q, end)
		return
	}
	go func() { end(c.next.Lookup(context.Background(), q)) }()
}
