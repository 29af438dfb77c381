package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/kommun/servicegateway/gateway/s3blob/s3test"
)

// GATEWAY_ATTACHMENT_STORE=s3 against a real S3-protocol server (gofakes3
// on a real listener): the gateway starts and serves with its bucket, and
// refuses to start when the bucket does not exist.
func TestGatewayWithS3Store(t *testing.T) {
	_, s3cfg := s3test.Start(t)
	env := map[string]string{"GATEWAY_ADDR": "127.0.0.1:0", "GATEWAY_LOG_LEVEL": "error",
		"GATEWAY_ATTACHMENT_STORE": "s3", "GATEWAY_S3_ENDPOINT": s3cfg.Endpoint, "GATEWAY_S3_BUCKET": s3cfg.Bucket,
		"GATEWAY_S3_TLS": "off", "GATEWAY_S3_ACCESS_KEY": s3cfg.AccessKey, "GATEWAY_S3_SECRET_KEY": s3cfg.SecretKey}

	missing := map[string]string{}
	for k, v := range env {
		missing[k] = v
	}
	missing["GATEWAY_S3_BUCKET"] = "no-such-bucket"
	err := run(context.Background(), nil, func(k string) string { return missing[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Fatalf("missing bucket: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, func(k string) string { return env[k] }, pw, io.Discard); pw.Close() }()
	buf := make([]byte, 256)
	n, _ := pr.Read(buf)
	m := listening.FindStringSubmatch(string(buf[:n]))
	if m == nil {
		t.Fatalf("no listening line: %q", buf[:n])
	}
	go io.Copy(io.Discard, pr)
	res, err := client.Get(m[1] + "/")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("catalog: %v %v", err, res)
	}
	res.Body.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run returned %v", err)
	}
}
