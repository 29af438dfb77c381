package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/receipt"
)

func writeKeys(t *testing.T, path string, keys ...receipt.Key) {
	t.Helper()
	set := receipt.JWKSet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, receipt.PrivateJWK(k))
	}
	b, _ := json.Marshal(set)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// runVerify runs the real binary's verify-receipt and returns its exit
// status and output.
func runVerify(t *testing.T, keysURL, file string, flags ...string) (int, string) {
	t.Helper()
	gwBin, _ := binaries(t)
	args := append([]string{"verify-receipt", "--keys", keysURL}, flags...)
	out, err := execCommand(gwBin, append(args, file)...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatal(err)
	return -1, ""
}

// `gateway verify-receipt` against a running gateway (real processes and
// Redis): the 202 answer saved as a file verifies (exit 0); a forged
// receipt and a changed payload exit non-zero; after a key rotation and a
// restart, the old receipt still verifies and the re-signed one does too.
func TestVerifyReceiptCommand(t *testing.T) {
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "receipt-keys.json")
	k1, _ := receipt.Generate()
	writeKeys(t, keysFile, k1)
	rs, cs, gw := startStack(t, map[string]string{"GATEWAY_RECEIPT_KEYS": keysFile})

	status, ans := postJSON(t, gw.URL+"/api/v1/services/street-fault/submissions",
		`{"kind":"pothole","description":"Djupt hål mitt i körbanan","location":"Storgatan 12"}`)
	if status != 202 || ans["receipt"] == nil || ans["payload"] == nil {
		t.Fatalf("submit: %d %v", status, ans)
	}
	good := filepath.Join(dir, "receipt.json")
	b, _ := json.Marshal(ans)
	os.WriteFile(good, b, 0o600)
	keysURL := gw.URL + "/.well-known/receipt-keys.json"
	if code, out := runVerify(t, keysURL, good); code != 0 || !strings.Contains(out, "VALID") || !strings.Contains(out, "payload: matches") {
		t.Fatalf("good receipt: exit %d\n%s", code, out)
	}

	// A changed payload.
	changed := map[string]any{}
	json.Unmarshal(b, &changed)
	changed["payload"].(map[string]any)["location"] = "Storgatan 13"
	cb, _ := json.Marshal(changed)
	changedFile := filepath.Join(dir, "changed.json")
	os.WriteFile(changedFile, cb, 0o600)
	if code, out := runVerify(t, keysURL, changedFile); code != 1 || !strings.Contains(out, "INVALID") {
		t.Fatalf("changed payload: exit %d\n%s", code, out)
	}

	// A forged receipt: the claims changed under the signature.
	jws := ans["receipt"].(map[string]any)["jws"].(string)
	parts := strings.Split(jws, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	claims = []byte(strings.Replace(string(claims), `"channel":"api"`, `"channel":"digital"`, 1))
	forgedFile := filepath.Join(dir, "forged.jws")
	os.WriteFile(forgedFile, []byte(parts[0]+"."+base64.RawURLEncoding.EncodeToString(claims)+"."+parts[2]), 0o600)
	if code, out := runVerify(t, keysURL, forgedFile); code != 1 {
		t.Fatalf("forged receipt: exit %d\n%s", code, out)
	}
	// Signed by a key that is not the gateway's, under its kid.
	k0, _ := receipt.Generate()
	alien, _ := receipt.NewKeyring([]receipt.Key{{ID: k1.ID, Private: k0.Private, Public: k0.Public}})
	c, _, _ := receipt.JWKSet{Keys: []receipt.JWK{receipt.PrivateJWK(k1)}}.Verify(jws)
	alienJWS, _ := alien.Sign(c)
	alienFile := filepath.Join(dir, "alien.jws")
	os.WriteFile(alienFile, []byte(alienJWS), 0o600)
	if code, out := runVerify(t, keysURL, alienFile); code != 1 {
		t.Fatalf("receipt signed with another key: exit %d\n%s", code, out)
	}

	// Rotation: the new key first, the old one kept; restart.
	gw.Stop()
	k2, _ := receipt.Generate()
	writeKeys(t, keysFile, k2, k1)
	env := gatewayEnv(rs.URL(), cs.URL)
	env["GATEWAY_RECEIPT_KEYS"] = keysFile
	gw2 := gatewayProc(t, env)
	keysURL = gw2.URL + "/.well-known/receipt-keys.json"
	if code, out := runVerify(t, keysURL, good); code != 0 {
		t.Fatalf("old receipt after rotation: exit %d\n%s", code, out)
	}
	var now struct {
		Receipt struct{ JWS, KID string } `json:"receipt"`
	}
	if getJSON(t, gw2.URL+"/api/v1/submissions/"+ans["id"].(string), &now) != 200 || now.Receipt.JWS == jws || now.Receipt.KID != k2.ID {
		t.Fatalf("receipt after rotation: %+v", now.Receipt)
	}
	resigned := filepath.Join(dir, "resigned.json")
	rb, _ := json.Marshal(map[string]any{"receipt": map[string]string{"jws": now.Receipt.JWS}, "payload": ans["payload"]})
	os.WriteFile(resigned, rb, 0o600)
	if code, out := runVerify(t, keysURL, resigned); code != 0 {
		t.Fatalf("re-signed receipt: exit %d\n%s", code, out)
	}
	if code, _ := runVerify(t, keysURL, changedFile); code != 1 {
		t.Fatalf("changed payload after rotation: exit %d", code)
	}
}

// `gateway verify-receipt --attachment FILE`: the files a resident kept
// verify against their receipt; a changed file exits 1 although the
// signature is good. (The receipt is signed here with the gateway's key
// format; the binary is the real one.)
func TestVerifyReceiptAttachments(t *testing.T) {
	dir := t.TempDir()
	k, _ := receipt.Generate()
	keysFile := filepath.Join(dir, "receipt-keys.json")
	writeKeys(t, keysFile, k)
	ring, _ := receipt.NewKeyring([]receipt.Key{k})
	drawing := []byte("%PDF-1.7 ritning av tillbyggnaden")
	d, _ := receipt.FileDigest(strings.NewReader(string(drawing)))
	jws, err := ring.SignSubmission(&gateway.Submission{Reference: "AB12-CD34", Service: "building-permit", ServiceVersion: "1.0.0",
		Channel: gateway.ChannelDigital, CreatedAt: time.Now(), PayloadHash: strings.Repeat("0", 64),
		Attachments: []gateway.Attachment{{ID: "x", Field: "drawings", Name: "ritning.pdf", SHA256: d}}})
	if err != nil {
		t.Fatal(err)
	}
	rf := filepath.Join(dir, "receipt.jws")
	os.WriteFile(rf, []byte(jws), 0o600)
	good := filepath.Join(dir, "ritning.pdf")
	os.WriteFile(good, drawing, 0o600)
	if code, out := runVerify(t, keysFile, rf, "--attachment", good); code != 0 || !strings.Contains(out, "1 given, each matches") {
		t.Fatalf("the attached file: exit %d\n%s", code, out)
	}
	changed := filepath.Join(dir, "ritning-andrad.pdf")
	os.WriteFile(changed, append(drawing, ' '), 0o600)
	if code, out := runVerify(t, keysFile, rf, "--attachment", good, "--attachment", changed); code != 1 || !strings.Contains(out, "INVALID") {
		t.Fatalf("a changed file: exit %d\n%s", code, out)
	}
}
