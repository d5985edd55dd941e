package relay_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mxtrace/mxtrace/relay"
)

// A recipients file with one mailbox and one catch-all domain; SIGHUP
// would call Reload.
func ExampleLoadStaticList() {
	dir, err := os.MkdirTemp("", "recipients")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "recipients")
	os.WriteFile(path, []byte("# valid recipients\nalice@example.com\n@lists.example.com\n"), 0o600)

	list, err := relay.LoadStaticList(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range []string{"Alice@example.com", "news@lists.example.com", "bob@example.com"} {
		rcpt, err := relay.ParseAddress(a)
		if err != nil {
			fmt.Println(err)
			continue
		}
		v := list.VerifyRecipient(context.Background(), rcpt)
		if v.Accepted() {
			fmt.Println(a, "accepted")
		} else {
			fmt.Println(a, v.Error())
		}
	}
	// Output:
	// Alice@example.com accepted
	// news@lists.example.com accepted
	// bob@example.com 550 5.1.1 no such recipient
}
