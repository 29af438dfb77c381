package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/receipt"
)

func newKey(t *testing.T) receipt.Key {
	t.Helper()
	k, err := receipt.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyring(t *testing.T, keys ...receipt.Key) *receipt.Keyring {
	t.Helper()
	r, err := receipt.NewKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type receiptAnswer struct {
	ID      string          `json:"id"`
	Receipt json.RawMessage `json:"receipt"`
	Payload json.RawMessage `json:"payload"`
}

type receiptMember struct {
	JWS              string `json:"jws"`
	KID              string `json:"kid"`
	VerificationCode string `json:"verification_code"`
	KeysURL          string `json:"keys_url"`
}

// Receipts are signed from the stored record: the 202 answer and the
// status API carry the JWS; after a key rotation (a second server on the
// same Redis with the new key first), the receipt is re-signed with the new
// key and the old JWS still verifies against the published keys; a changed
// payload does not verify, on the page either.
func TestSignedReceiptAcrossRotation(t *testing.T) {
	deps, store, _ := baseDeps(t)
	oldKey := newKey(t)
	deps.Receipts = keyring(t, oldKey)
	before := &env{app: build(t, deps), store: store}

	r := before.postJSON(t, "/api/v1/services/street-fault/submissions",
		`{"kind":"streetlight","description":"Lampan lyser inte på natten","location":"Parkvägen 3 <vid> & bron"}`)
	if r.status != 202 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	var ans receiptAnswer
	var rm1 receiptMember
	if err := json.Unmarshal([]byte(r.body), &ans); err != nil || json.Unmarshal(ans.Receipt, &rm1) != nil || rm1.JWS == "" {
		t.Fatalf("no receipt in the 202 answer: %s", r.body)
	}
	if rm1.KID != oldKey.ID || rm1.KeysURL != httpapi.ReceiptKeysPath || rm1.VerificationCode != receipt.VerificationCode(rm1.JWS) {
		t.Fatalf("receipt member %+v", rm1)
	}
	// The 202 answer saved as a file verifies, payload included.
	f, err := receipt.ParseFile([]byte(r.body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := receipt.Check(keyring(t, oldKey).JWKS(), f)
	if err != nil || !res.PayloadChecked {
		t.Fatalf("the 202 answer as a receipt file: %v %+v", err, res)
	}
	// The status API gives the same JWS (Ed25519 is deterministic).
	var st struct{ Receipt receiptMember }
	if err := json.Unmarshal([]byte(before.get(t, "/api/v1/submissions/"+ans.ID).body), &st); err != nil || st.Receipt.JWS != rm1.JWS {
		t.Fatalf("status API receipt %q, want %q", st.Receipt.JWS, rm1.JWS)
	}

	// Rotation: the new key first, the old one kept (public part only).
	newK := newKey(t)
	deps.Receipts = keyring(t, newK, receipt.Key{ID: oldKey.ID, Public: oldKey.Public})
	after := &env{app: build(t, deps), store: store}
	if err := json.Unmarshal([]byte(after.get(t, "/api/v1/submissions/"+ans.ID).body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Receipt.JWS == rm1.JWS || st.Receipt.KID != newK.ID {
		t.Fatalf("not re-signed with the new key: %+v", st.Receipt)
	}
	kr := after.get(t, httpapi.ReceiptKeysPath)
	if kr.status != 200 || strings.Contains(kr.body, `"d"`) {
		t.Fatalf("keys: %d %s", kr.status, kr.body)
	}
	set, err := receipt.ParseJWKS([]byte(kr.body))
	if err != nil || len(set.Keys) != 2 {
		t.Fatalf("published keys: %v %s", err, kr.body)
	}
	for name, jws := range map[string]string{"old": rm1.JWS, "new": st.Receipt.JWS} {
		if _, err := receipt.Check(set, receipt.File{JWS: jws, Payload: ans.Payload}); err != nil {
			t.Errorf("%s receipt after rotation: %v", name, err)
		}
	}
	// A changed payload fails.
	changed := strings.Replace(string(ans.Payload), "Parkvägen 3", "Parkvägen 4", 1)
	if changed == string(ans.Payload) {
		t.Fatalf("payload %s", ans.Payload)
	}
	if _, err := receipt.Check(set, receipt.File{JWS: rm1.JWS, Payload: []byte(changed)}); err != receipt.ErrPayloadMismatch {
		t.Fatalf("changed payload: %v", err)
	}

	// The page, in English: the right payload verifies, a changed one does
	// not, a forged receipt does not.
	page := after.get(t, "/receipts/verify?lang=en")
	if page.status != 200 {
		t.Fatalf("verify page: %d", page.status)
	}
	cookie := ""
	for _, c := range page.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "gw_csrf=") {
			cookie = strings.SplitN(c, ";", 2)[0]
		}
	}
	csrf := hidden(t, page.body, "_csrf")
	post := func(jws, payload string) resp {
		return after.postForm(t, "/receipts/verify?lang=en", cookie, url.Values{"_csrf": {csrf}, "receipt": {jws}, "payload": {payload}})
	}
	if p := post(rm1.JWS, string(ans.Payload)); p.status != 200 || !strings.Contains(p.body, "The receipt is genuine") ||
		!strings.Contains(p.body, "The submitted details match the receipt.") || !strings.Contains(p.body, rm1.VerificationCode) {
		t.Fatalf("good receipt on the page: %d %s", p.status, p.body)
	}
	if p := post(rm1.JWS, changed); p.status != 422 || !strings.Contains(p.body, "they have been changed") {
		t.Fatalf("changed payload on the page: %d", p.status)
	}
	forged := forge(t, rm1.JWS)
	if p := post(forged, ""); p.status != 422 || !strings.Contains(p.body, "is not genuine") {
		t.Fatalf("forged receipt on the page: %d", p.status)
	}

	// The receipt page shows the verification code and the JWS.
	rp := after.get(t, "/s/"+ans.ID+"?receipt=1")
	if !strings.Contains(rp.body, st.Receipt.VerificationCode) || !strings.Contains(rp.body, st.Receipt.JWS) {
		t.Fatalf("receipt page lacks the signed receipt:\n%s", rp.body)
	}
}

// forge changes the reference in a receipt's claims and keeps the
// signature.
func forge(t *testing.T, jws string) string {
	t.Helper()
	parts := strings.Split(jws, ".")
	c, err := base64Decode(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"reference":"[^"]*"`)
	c = m.ReplaceAll(c, []byte(`"reference":"ZZZZ-9999"`))
	return parts[0] + "." + base64Encode(c) + "." + parts[2]
}

func base64Decode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
func base64Encode(b []byte) string          { return base64.RawURLEncoding.EncodeToString(b) }
