package scan

import (
	"testing"
	"time"
)

// TestReceive: receive hands out what c holds, reports c's closing, and
// takes nothing once done is closed, even with entries waiting (an
// interrupted run starts no more); it waits while c is empty.
func TestReceive(t *testing.T) {
	c := make(chan int, 2)
	done := make(chan struct{})
	c <- 1
	if v, ok := receive(c, done); !ok || v != 1 {
		t.Fatalf("receive = %d, %v; want 1, true", v, ok)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		c <- 2
	}()
	if v, ok := receive(c, done); !ok || v != 2 {
		t.Fatalf("receive after a wait = %d, %v; want 2, true", v, ok)
	}
	c <- 3
	close(done)
	for range 100 {
		if v, ok := receive(c, done); ok {
			t.Fatalf("receive after done = %d, true; want nothing taken", v)
		}
	}
	if len(c) != 1 {
		t.Fatalf("%d entries left in c, want the 1 not taken", len(c))
	}
	open := make(chan int)
	close(open)
	if _, ok := receive(open, make(chan struct{})); ok {
		t.Fatal("receive from a closed channel reported an entry")
	}
}

// TestTake: take fills a free place, waits for one to be freed, and takes
// none once done is closed, even with places free.
func TestTake(t *testing.T) {
	sem := make(chan struct{}, 1)
	done := make(chan struct{})
	if !take(sem, done) {
		t.Fatal("take with a free place = false")
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		<-sem
	}()
	if !take(sem, done) {
		t.Fatal("take after a place was freed = false")
	}
	<-sem
	close(done)
	for range 100 {
		if take(sem, done) {
			t.Fatal("take after done = true; want no place taken")
		}
	}
	if len(sem) != 0 {
		t.Fatalf("%d places taken after done", len(sem))
	}
	full := make(chan struct{}, 1)
	full <- struct{}{}
	stop := make(chan struct{})
	go func() {
		time.Sleep(10 * time.Millisecond)
		close(stop)
	}()
	if take(full, stop) {
		t.Fatal("take on a full semaphore = true; want false once done is closed")
	}
}
