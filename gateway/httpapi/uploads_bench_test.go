package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// patternReader yields a PDF of n bytes made up as it is read, so the
// client holds no copy of the file.
type patternReader struct{ left, off int }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.left)
	for i := range n {
		p[i] = byte((r.off + i) * 31)
	}
	if r.off == 0 {
		copy(p[:n], "%PDF-1.7\n")
	}
	r.off += n
	r.left -= n
	return n, nil
}

// BenchmarkUpload20MB sends a 20 MB file through the real HTTP handler
// (POST /api/v1/uploads over a real TCP connection, Fiber with streamed
// bodies) into a real redis-server, and reports the throughput (MB/s) and
// the gateway process's peak heap in use above what it held before
// (peak-heap-MB, sampled every 2 ms): it stays near one chunk and the
// buffers, not the file's size.
//
//	GOTOOLCHAIN=go1.26.11 go test ./gateway/httpapi/ -run '^$' -bench Upload20MB -benchtime 10x
func BenchmarkUpload20MB(b *testing.B) {
	const size = 20_000_000
	e := newUploadEnv(b, uploadOpts{noScanner: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go e.app.Listener(ln)
	b.Cleanup(func() { e.app.Shutdown() })
	url := "http://" + ln.Addr().String() + "/api/v1/uploads?service=attach-test&field=archive&name=arkiv.pdf"
	client := &http.Client{Timeout: time.Minute}
	upload := func() string {
		req, _ := http.NewRequest("POST", url, &patternReader{left: size})
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			ID   string `json:"id"`
			Size int64  `json:"size"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusCreated || out.Size != size {
			b.Fatalf("upload: %d %v %+v", res.StatusCode, err, out)
		}
		return out.ID
	}
	e.store.DeleteAttachments(context.Background(), upload()) // warm up
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
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
	}()
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		id := upload()
		b.StopTimer()
		e.store.DeleteAttachments(context.Background(), id)
		b.StartTimer()
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	over := float64(0)
	if p := peak.Load(); p > base {
		over = float64(p-base) / 1e6
	}
	b.ReportMetric(over, "peak-heap-MB")
	b.Log(fmt.Sprintf("heap in use before %.1f MB, peak %.1f MB", float64(base)/1e6, float64(peak.Load())/1e6))
}
