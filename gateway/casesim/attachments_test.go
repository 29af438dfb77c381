package casesim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

// fileServer serves files from a folder behind signed links, as the
// gateway's /attachments/{id} does; broken answers 503 while set.
type fileServer struct {
	dir    string
	links  *gateway.AttachmentLinks
	broken atomic.Bool
	hits   atomic.Int64
	srv    *httptest.Server
}

func newFileServer(t *testing.T) *fileServer {
	fs := &fileServer{dir: t.TempDir()}
	fs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.hits.Add(1)
		id := strings.TrimPrefix(r.URL.Path, gateway.AttachmentPathPrefix)
		if err := fs.links.Verify(id, r.URL.Query().Get("exp"), r.URL.Query().Get("sig"), time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		if fs.broken.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		http.ServeFile(w, r, filepath.Join(fs.dir, filepath.Base(id)))
	}))
	t.Cleanup(fs.srv.Close)
	fs.links = &gateway.AttachmentLinks{BaseURL: fs.srv.URL, Secret: []byte("link-secret"), TTL: time.Hour}
	return fs
}

// add writes a file and returns its description.
func (fs *fileServer) add(t *testing.T, id string, b []byte) gateway.Attachment {
	if err := os.WriteFile(filepath.Join(fs.dir, id), b, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return gateway.Attachment{ID: id, Field: "certificate", Name: "intyg.pdf", Type: "application/pdf", Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
}

func (fs *fileServer) Open(context.Context, gateway.Attachment) (io.ReadCloser, error) {
	return nil, errors.New("links only")
}
func (fs *fileServer) Link(a gateway.Attachment) (string, time.Time) { return fs.links.Link(a) }

func TestAttachmentsFetchedAndChecked(t *testing.T) {
	srv, err := New(Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	cs := httptest.NewServer(srv)
	defer cs.Close()
	fs := newFileServer(t)
	mod := &httpjson.Settings{URL: "${CASESIM_URL}/cases", Secret: "${CASESIM_SECRET}"}
	conn, err := mod.Provision(func(k string) string {
		return map[string]string{"CASESIM_URL": cs.URL, "CASESIM_SECRET": string(testSecret)}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	pdf := append([]byte("%PDF-1.4\n"), make([]byte, 200_000)...)
	for i := range pdf[9:] {
		pdf[9+i] = byte(i * 7)
	}
	good := fs.add(t, "att-good", pdf)
	d := func(id string, atts ...gateway.Attachment) *gateway.Delivery {
		return &gateway.Delivery{SubmissionID: id, Reference: "REF-" + id, Service: "parking-permit-disabled", Channel: gateway.ChannelDigital,
			SubmittedAt: time.Now(), Attempt: 1, Attachments: atts, Files: fs}
	}
	ctx := context.Background()

	// The file server is down: the delivery fails with a temporary error
	// and no case is made; the next attempt fetches and makes the case.
	fs.broken.Store(true)
	if _, err := conn.Deliver(ctx, d("sub-1", good)); err == nil || isPermanent(err) {
		t.Fatalf("delivery with unfetchable attachment: %v, want a temporary error", err)
	}
	if srv.Count() != 0 {
		t.Fatalf("a case was made although its attachment could not be fetched")
	}
	fs.broken.Store(false)
	ref, err := conn.Deliver(ctx, d("sub-1", good))
	if err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	c := srv.Cases()[0]
	if c.CaseReference != ref || len(c.Attachments) != 1 {
		t.Fatalf("case %+v", c)
	}
	if got := c.Attachments[0]; got.SHA256 != good.SHA256 || got.Size != int64(len(pdf)) || got.Name != "intyg.pdf" {
		t.Fatalf("attachment %+v, want sha256 %s size %d", got, good.SHA256, len(pdf))
	}
	// A repeat of the same delivery does not fetch again.
	hits := fs.hits.Load()
	if _, err := conn.Deliver(ctx, d("sub-1", good)); err != nil {
		t.Fatal(err)
	}
	if fs.hits.Load() != hits {
		t.Errorf("a repeated delivery fetched the attachment again")
	}

	// Bytes that do not match the announced digest are refused (502).
	bad := fs.add(t, "att-bad", []byte("%PDF-1.4 other bytes"))
	bad.SHA256 = good.SHA256
	if _, err := conn.Deliver(ctx, d("sub-2", bad)); err == nil || isPermanent(err) {
		t.Fatalf("delivery with a changed attachment: %v, want a temporary error", err)
	}
	// Over the size limit: refused before fetching.
	huge := good
	huge.Size = DefaultMaxAttachment + 1
	if _, err := conn.Deliver(ctx, d("sub-3", huge)); err == nil {
		t.Fatal("delivery with an oversized attachment accepted")
	}
	if srv.Count() != 1 {
		t.Fatalf("%d cases, want 1", srv.Count())
	}
}

func isPermanent(err error) bool {
	var de *gateway.DeliveryError
	return errors.As(err, &de) && de.Permanent
}
