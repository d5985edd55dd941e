package mux

// DeferredSent is how many queries m's flusher sent: the deferred ones it
// took from the outboxes (flushBatches), for TestMuxDeferredFlush.
func DeferredSent(m *Mux) int64 { return m.deferredSent.Load() }

// SendCalls is how many system calls m made to send queries, for
// TestMuxBatchBlocking.
func SendCalls(m *Mux) int64 { return m.sendCalls.Load() }
