// Command floorproxy is the floor for the gateway's proxy path in
// .bench/proxy.sh (FLOOR=1): fasthttp's server and HostClient alone, with
// the same client settings as services/connectors/proxy and nothing else
// (no router, middleware, authentication or header rules). What the
// gateway costs above it is the gateway's; what it costs above nginx is
// Go's and fasthttp's.
//
//	go build -o floorproxy ./.bench/floorproxy && ./floorproxy 127.0.0.1:18487 127.0.0.1:18481
package main

import (
	"log"
	"os"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: floorproxy <listen addr> <upstream host:port>")
	}
	up := &fasthttp.HostClient{Addr: os.Args[2], StreamResponseBody: true, MaxResponseBodySize: 64 << 10, MaxConns: 512,
		MaxIdleConnDuration: 60 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		DisableHeaderNamesNormalizing: true, DisablePathNormalizing: true, NoDefaultUserAgentHeader: true}
	srv := &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			c.Request.SetHost(os.Args[2])
			if err := up.DoTimeout(&c.Request, &c.Response, 30*time.Second); err != nil {
				c.Error("upstream", fasthttp.StatusServiceUnavailable)
			}
		},
		ReadBufferSize: 16 * 1024, WriteBufferSize: 16 * 1024, IdleTimeout: 120 * time.Second,
	}
	log.Fatal(srv.ListenAndServe(os.Args[1]))
}
