package mux

// DeferredSent is how many queries m's flusher sent: the deferred ones it
// took from the outboxes (flushBatches), for TestMuxDeferredFlush.
func DeferredSent(m *Mux) int64 { return m.deferredSent.Load() }
