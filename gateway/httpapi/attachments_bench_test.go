package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/s3blob/s3test"
)

// BenchmarkAttachmentDownload20MB fetches a 20 MB attachment through its
// signed link (GET /attachments/{id}, the real route on a real listener,
// streamed from a real redis-server one chunk at a time), as a back-end
// does after a delivery, checking the SHA-256 of every download. It
// reports MB/s and the process's peak heap in use above what it held
// before (peak-heap-MB, sampled every 2 ms; the client's reading is in
// the same process and holds no copy).
//
// Sub-benchmarks: the bytes in Redis chunks, and in an S3-protocol server
// (gofakes3, in memory, on a real listener).
//
//	GOTOOLCHAIN=go1.26.11 go test ./gateway/httpapi/ -run '^$' -bench AttachmentDownload20MB -benchtime 10x
func BenchmarkAttachmentDownload20MB(b *testing.B) {
	b.Run("redis", func(b *testing.B) { benchmarkDownload(b, false) })
	b.Run("s3", func(b *testing.B) { benchmarkDownload(b, true) })
}

func benchmarkDownload(b *testing.B, s3 bool) {
	const size = 20_000_000
	deps, store, _ := baseDeps(b)
	if s3 {
		store.Blobs, _ = s3test.Start(b)
	}
	e := &attachmentEnv{store: store}
	ln, links := listenWithLinks(b)
	deps.Attachments, deps.AttachmentLinks = store, links
	app := build(b, deps)
	go func() { _ = app.Listener(ln) }()
	b.Cleanup(func() { _ = app.Shutdown() })
	a, err := e.store.PutAttachment(context.Background(), gateway.Attachment{Field: "drawings", Name: "ritning.pdf", Type: "application/pdf"},
		&patternReader{left: size}, size, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	link, _ := links.Link(a)
	client := &http.Client{Timeout: time.Minute}
	get := func() {
		res, err := client.Get(link)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		h := sha256.New()
		n, err := io.Copy(h, res.Body)
		if err != nil || res.StatusCode != 200 || n != size || hex.EncodeToString(h.Sum(nil)) != a.SHA256 {
			b.Fatalf("download: %d, %d bytes, %v", res.StatusCode, n, err)
		}
	}
	get() // warm up
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	})
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		get()
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	over := float64(0)
	if p := peak.Load(); p > base {
		over = float64(p-base) / 1e6
	}
	b.ReportMetric(over, "peak-heap-MB")
}
