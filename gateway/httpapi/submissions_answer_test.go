package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/kommun/servicegateway/gateway"
)

// TestAcceptedAnswerBytesAsMap: the 202 answer, now a struct, has the bytes
// the fiber.Map it replaced gave (members sorted by name; receipt and
// payload only with a receipt, also an empty payload; the on-behalf
// members only for a filing on behalf, also when empty).
func TestAcceptedAnswerBytesAsMap(t *testing.T) {
	signed := &receiptJSON{JWS: "a.b.c", KeyID: "r-x", VerificationCode: "ABCD-EFGH", KeysURL: "https://gw/keys"}
	base := func() (*acceptedAnswer, fiber.Map) {
		return &acceptedAnswer{ID: "id1", Reference: "AB12-CD34", Status: gateway.StatusReceived, StatusURL: "https://gw/api/v1/submissions/id1", ReceiptURL: "https://gw/s/id1"},
			fiber.Map{"id": "id1", "reference": "AB12-CD34", "status": gateway.StatusReceived, "status_url": "https://gw/api/v1/submissions/id1", "receipt_url": "https://gw/s/id1"}
	}
	for i, mod := range []func(a *acceptedAnswer, m fiber.Map){
		func(a *acceptedAnswer, m fiber.Map) {},
		func(a *acceptedAnswer, m fiber.Map) {
			p := map[string]any{"kind": "pothole", "description": "<hål> & \"där\""}
			a.Receipt, a.Payload = signed, p
			m["receipt"], m["payload"] = signed, p
		},
		func(a *acceptedAnswer, m fiber.Map) {
			a.Receipt, a.Payload = signed, map[string]any{}
			m["receipt"], m["payload"] = signed, map[string]any{}
		},
		func(a *acceptedAnswer, m fiber.Map) {
			a.Channel, a.ServicePoint, a.Subject, a.PrintURL = gateway.ChannelAssisted, "", "19******-**12", "https://gw/desk/receipt/id1"
			m["channel"], m["service_point"], m["subject"], m["print_url"] = gateway.ChannelAssisted, "", "19******-**12", "https://gw/desk/receipt/id1"
		},
	} {
		a, m := base()
		mod(a, m)
		got, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(m)
		if string(got) != string(want) {
			t.Fatalf("case %d:\n%s\nthe map gave\n%s", i, got, want)
		}
	}
}

// BenchmarkGzipAcceptedAnswer: what gzip costs on a 202 answer of about
// 1 KB (the compress middleware's level), and what it saves.
func BenchmarkGzipAcceptedAnswer(b *testing.B) {
	jws := "eyJhbGciOiJFZERTQSIsImtpZCI6InItQUJDREVGR0hJSktMTU5PUCIsInR5cCI6InJlY2VpcHQrand0In0." +
		"eyJyZWZlcmVuY2UiOiJBQjEyLUNEMzQiLCJzZXJ2aWNlIjoic3RyZWV0LWZhdWx0Iiwic2VydmljZV92ZXJzaW9uIjoiMS4wLjAiLCJyZWNlaXZlZF9hdCI6IjIwMjYtMTItMDJUMDU6MDA6MDAuMTIzNDU2Nzg5WiIsInBheWxvYWRfc2hhMjU2IjoiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWIiLCJhdHRhY2htZW50c19zaGEyNTYiOltdLCJjaGFubmVsIjoiYXBpIn0." +
		"Qk5hX2xQbXJ3c3ZmZ0hfR2JkS1pNX0VhT3pWdGVmY2N0S2JLX0VhT3pWdGVmY2N0S2JLX0VhT3pWdGVmY2N0S2JLX0Vh"
	a := &acceptedAnswer{ID: "01JEXAMPLE0000000000000000", Reference: "AB12-CD34", Status: gateway.StatusReceived,
		StatusURL: "http://127.0.0.1:8080/api/v1/submissions/01JEXAMPLE0000000000000000", ReceiptURL: "http://127.0.0.1:8080/s/01JEXAMPLE0000000000000000",
		Receipt: &receiptJSON{JWS: jws, KeyID: "r-ABCDEFGHIJKLMNOP", VerificationCode: "ABCD-EFGH", KeysURL: "http://127.0.0.1:8080/.well-known/receipt-keys.json"},
		Payload: map[string]any{"kind": "pothole", "description": "Ett djupt hål i cykelbanan vid bron", "location": map[string]any{"address": "Storgatan 1"}}}
	body, _ := json.Marshal(a)
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		out = fasthttp.AppendGzipBytesLevel(out[:0], body, CompressConfigDefault.Level)
	}
	b.ReportMetric(float64(len(body)), "bytes-in")
	b.ReportMetric(float64(len(out)), "bytes-out")
}
