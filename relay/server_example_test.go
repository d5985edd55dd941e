package relay_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"sync"

	"github.com/mxtrace/mxtrace/dnsname"
	"github.com/mxtrace/mxtrace/relay"
	"github.com/mxtrace/mxtrace/relay/queue"
)

// memQueue keeps messages in memory (relay/queue is the durable one).
type memQueue struct {
	mu   sync.Mutex
	msgs []*queue.Message
}

func (q *memQueue) Enqueue(_ context.Context, m *queue.Message) (queue.ID, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, m)
	return queue.ID(len(q.msgs)), nil
}

func ExampleServer() {
	q := &memQueue{}
	s, err := relay.NewServer(relay.Config{
		Domains:  []dnsname.Name{"example.com"},
		Hostname: "backup-mx.example.net",
		Queue:    q,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()

	msg := []byte("Subject: hello\r\n\r\nhello\r\n")
	fmt.Println(smtp.SendMail(ln.Addr().String(), nil, "alice@example.org", []string{"Bob@Example.COM"}, msg))
	fmt.Println(smtp.SendMail(ln.Addr().String(), nil, "alice@example.org", []string{"carol@elsewhere.example"}, msg))
	fmt.Println(smtp.SendMail(ln.Addr().String(), nil, "alice@example.org", []string{"carol%elsewhere.example@example.com"}, msg))

	if err := s.Shutdown(context.Background()); err != nil {
		panic(err)
	}
	if err := <-done; err != nil {
		panic(err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	fmt.Println(len(q.msgs), q.msgs[0].Recipients)
	// Output:
	// <nil>
	// 550 "5.7.1 Relaying denied: elsewhere.example is not a domain of this server"
	// 550 "5.7.1 Relaying denied: routing characters in the local part: '%' in \"carol%elsewhere.example\""
	// 1 [Bob@example.com]
}
