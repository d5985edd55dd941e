package serve_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/mxtrace/mxtrace/check"
	"github.com/mxtrace/mxtrace/resolve"
	"github.com/mxtrace/mxtrace/route"
	"github.com/mxtrace/mxtrace/serve"
)

// Serve a zone file's domains over HTTP, as mxtrace serve --zone does,
// and ask for a delivery plan: the body is what mxtrace route --json
// prints.
func Example() {
	zones, _ := resolve.ParseZones(strings.NewReader(`
$ORIGIN example.
@        3600 SOA ns.example. hostmaster.example. 1 7200 900 1209600 300
shop     3600 MX 10 mx.shop.example.
mx.shop  3600 A  192.0.2.10
`), "example.zone")
	// One cache for every request: a domain is resolved once per TTL.
	r := resolve.NewCache(zones, 0)
	p := &route.Planner{Resolver: r}
	srv, err := serve.New(serve.Config{
		Resolver: r,
		Planner:  p,
		Auditor:  &check.Auditor{Resolver: r, Planner: p, SkipReason: "offline"},
	})
	if err != nil {
		panic(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	resp, err := http.Get(ts.URL + "/api/v1/route/postmaster@shop.example")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"))
	fmt.Println(string(body[:strings.Index(string(body), `,"records"`)]))

	resp, err = http.Get(ts.URL + "/api/v1/route/192.0.2.10")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"))
	// Output:
	// 200 OK application/json
	// {"schema":1,"domain":"shop.example","result":"ok","implicit":false,"alias_chain":[]
	// 400 Bad Request application/problem+json
}
