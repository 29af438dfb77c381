package receipt

import (
	"encoding/base64"
	"os"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func writeFile(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }
