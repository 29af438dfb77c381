// Command floorproxy is the floor for the gateway's proxy path in
// .bench/proxy.sh (FLOOR=1): fasthttp's server and HostClient alone, with
// the same client settings as services/connectors/proxy, the server
// settings of the gateway's fiber app, and nothing else
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
		// The server settings fiber gives the gateway's fasthttp server
		// (gateway/httpapi/server.go): the same buffers, per-request read
		// and write deadlines, streamed bodies under the same limit, no
		// Server header.
		ReadBufferSize: 16 * 1024, WriteBufferSize: 16 * 1024,
		ReadTimeout: 15 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
		StreamRequestBody: true, DisablePreParseMultipartForm: true, MaxRequestBodySize: 256 * 1024,
		NoDefaultServerHeader: true, CloseOnShutdown: true,
	}
	log.Fatal(srv.ListenAndServe(os.Args[1]))
}
