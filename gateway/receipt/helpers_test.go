package receipt

import (
	"encoding/base64"
	"os"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func writeFile(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }

func benchSub() *gateway.Submission {
	h, _ := PayloadHash(map[string]any{"kind": "pothole", "description": "Ett djupt hål i vägen", "location": "Storgatan 1"})
	return &gateway.Submission{Reference: "AB12-CD34", Service: "street-fault", ServiceVersion: "1.0.0",
		Channel: gateway.ChannelDigital, CreatedAt: time.Date(2026, 12, 2, 5, 0, 0, 123456789, time.UTC), PayloadHash: h}
}
