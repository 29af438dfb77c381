package httpapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/locales"
)

// The OpenAPI 3.1 document of the JSON API, GET /api/v1/openapi.json, is
// made from the routes registered in routes.go and the descriptions below:
// NewServer fails when a route under /api/v1 has no description or a
// description no route, so the document cannot drift from the routes. Each
// service's submission gets its own path with the service's JSON Schema
// (schema.go), so a client sees exactly what each service accepts.

// apiPrefix is where the JSON API lives.
const apiPrefix = "/api/v1/"

// Who may call an operation (the security schemes it lists).
type access int

const (
	public     access = iota // anyone; a session or a bearer assertion may say who
	signedIn                 // a session (with X-CSRF-Token when it changes something) or a bearer assertion
	department               // a department's machine client (bearer), or a signed callback
)

// apiDoc describes one operation of the JSON API.
type apiDoc struct {
	Tag, Summary string
	Access       access
	// Query are the query parameters: name -> description.
	Query map[string]string
	// Body is the request body's schema (a components name); "" for none.
	Body string
	// Status and Response are the success status and its schema (a
	// components name, or "" for a JSON object).
	Status   int
	Response string
	// Also are further success statuses with the same schema.
	Also []int
	// Changes marks an operation that changes something: a session needs
	// the CSRF header for it.
	Changes bool
}

// pageQuery are the query parameters of a paged list.
var pageQuery = map[string]string{"cursor": "next_cursor or prev_cursor of an earlier answer; absent: the newest", "limit": "entries per page, 1 to 200, default 50"}

// apiDocs has one entry per JSON route, keyed "METHOD path" as in
// routes.go. Add the description with the route.
var apiDocs = map[string]apiDoc{
	"GET /api/v1/openapi.json": {Tag: "meta", Summary: "This OpenAPI 3.1 document", Status: 200},
	"GET /api/v1/services": {Tag: "catalog", Summary: "The service catalog", Query: map[string]string{"q": "search words"},
		Status: 200, Response: "ServiceList"},
	"GET /api/v1/services/:id": {Tag: "catalog", Summary: "A service with its fields and the JSON Schema of its payload", Status: 200, Response: "Service"},
	"POST /api/v1/services/:id/submissions": {Tag: "submissions", Summary: "Submit to a service (each service's own path below has its payload schema)",
		Access: public, Body: "Payload", Status: 202, Response: "Receipt", Changes: true},
	"POST /api/v1/uploads": {Tag: "submissions", Summary: "Upload one file for a service's file field (the bytes as the body; its type is found from them); the answer's id goes in the submission's file field",
		Access: public, Query: map[string]string{"service": "the service's id", "field": "the file field's name", "name": "the file's name"},
		Body: "File", Status: 201, Response: "Attachment", Changes: true},
	"GET /api/v1/submissions/:id": {Tag: "submissions", Summary: "A submission's status and history", Status: 200, Response: "Submission"},
	"POST /api/v1/submissions/:id/status": {Tag: "departments", Summary: "A back-end reports how its case is going (202: kept for a submission the gateway does not have)",
		Access: department, Body: "StatusUpdate", Status: 200, Also: []int{202}, Changes: true},
	"GET /api/v1/admin/dead-letters":             {Tag: "admin", Summary: "Dead letters (role admin)", Access: signedIn, Status: 200},
	"GET /api/v1/admin/dead-letters/:id":         {Tag: "admin", Summary: "One dead letter (role admin)", Access: signedIn, Status: 200},
	"POST /api/v1/admin/dead-letters/:id/replay": {Tag: "admin", Summary: "Deliver a dead letter again (role admin)", Access: signedIn, Status: 202, Changes: true},
	"POST /api/v1/admin/dead-letters/:id/close": {Tag: "admin", Summary: "Close a dead letter with a status for the resident (role admin)", Access: signedIn,
		Body: "CloseDeadLetter", Status: 200, Changes: true},
	"GET /api/v1/me": {Tag: "identity", Summary: "The signed-in principal and its CSRF token; 401 when anonymous", Access: signedIn, Status: 200, Response: "Me"},
	"GET /api/v1/me/notifications": {Tag: "identity", Summary: "A resident's notification preferences (e-mail, mobile, which status changes)", Access: signedIn,
		Status: 200, Response: "NotifyPrefs"},
	"PUT /api/v1/me/notifications": {Tag: "identity", Summary: "Set a resident's notification preferences", Access: signedIn,
		Body: "NotifyPrefs", Status: 200, Response: "NotifyPrefs", Changes: true},
	"POST /api/v1/submissions/:id/answer": {Tag: "submissions", Summary: "The owner (signed in), or for an anonymous submission whoever holds its status link, answers a department's completion request (needs_info); files come as multipart/form-data parts answer_files", Access: public,
		Body: "Answer", Status: 202, Changes: true},
	"GET /api/v1/admin/message-dead-letters": {Tag: "admin", Summary: "Messages to residents, department webhooks and follow-ups to case systems given up on (role admin; a department's administrator sees its own)",
		Access: signedIn, Status: 200, Response: "MessageDeadLetters", Query: map[string]string{"limit": "entries of each kind, at most 500"}},
	"POST /api/v1/admin/message-dead-letters/notifications/replay": {Tag: "admin", Summary: "Send a dead-lettered message or webhook again, under the same event id (404 when there is none, or it was replayed already)",
		Access: signedIn, Body: "ReplayNotification", Status: 202, Response: "Replayed", Changes: true},
	"POST /api/v1/admin/message-dead-letters/followups/replay": {Tag: "admin", Summary: "Deliver a dead-lettered follow-up again with a fresh count of attempts (404 when there is none, or it was replayed already)",
		Access: signedIn, Body: "ReplayFollowUp", Status: 202, Response: "Replayed", Changes: true},
	"GET /api/v1/me/submissions": {Tag: "identity", Summary: "A resident's submissions (My pages), newest first, a page at a time: next_cursor (older) and prev_cursor (newer) in the answer",
		Access: signedIn, Status: 200, Query: pageQuery},
	"GET /api/v1/department/submissions": {Tag: "departments", Summary: "A department client's submissions, without payloads, newest first, a page at a time: next_cursor (older) and prev_cursor (newer) in the answer",
		Access: department, Status: 200, Query: map[string]string{"service": "a service id (filters within the page)", "cursor": pageQuery["cursor"], "limit": pageQuery["limit"]}},
	"GET /api/v1/usage": {Tag: "usage", Summary: "Usage key figures, exact (staff, admin)", Access: signedIn, Status: 200,
		Query: map[string]string{"from": "first day, YYYY-MM-DD", "to": "last day, YYYY-MM-DD", "service": "a service id",
			"department": "a department id", "channel": "a channel", "locale": "a language tag", "granularity": "day, week or month"}},
	"POST /api/v1/contacts":        {Tag: "desk", Summary: "Register a contact at a service point (role staff)", Access: signedIn, Body: "Contact", Status: 201, Changes: true},
	"GET /api/v1/desk/submissions": {Tag: "desk", Summary: "The service point's filings this week, subjects masked (role staff)", Access: signedIn, Status: 200},
	"GET /api/v1/admin/audit": {Tag: "admin", Summary: "The audit of actions on behalf of residents (role admin)", Access: signedIn, Status: 200,
		Query: map[string]string{"before": "stream id to page from", "limit": "entries, at most 500"}},
}

// apiRoutes lists the registered JSON routes ("METHOD path"), sorted.
func apiRoutes(app *fiber.App) []string {
	seen := map[string]bool{}
	for _, r := range app.GetRoutes(true) {
		if r.Method == fiber.MethodHead || !strings.HasPrefix(r.Path, apiPrefix) {
			continue
		}
		seen[r.Method+" "+r.Path] = true
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkAPIDocs fails when a JSON route has no description. A description
// without a route is allowed only for routes registered conditionally.
func checkAPIDocs(app *fiber.App) error {
	var missing []string
	for _, r := range apiRoutes(app) {
		if _, ok := apiDocs[r]; !ok {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("httpapi: routes without a description in apiDocs (openapi.go): %s", strings.Join(missing, ", "))
	}
	return nil
}

// openAPI caches the document per language.
type openAPI struct {
	mu   sync.Mutex
	docs map[string][]byte
}

// apiOpenAPI: GET /api/v1/openapi.json, the OpenAPI 3.1 document.
func (s *Server) apiOpenAPI(c *fiber.Ctx) error {
	l := s.localizer(c)
	s.openapi.mu.Lock()
	b, ok := s.openapi.docs[l.Lang.String()]
	if !ok {
		var err error
		if b, err = json.Marshal(s.openAPIDoc(l)); err != nil {
			s.openapi.mu.Unlock()
			return err
		}
		if s.openapi.docs == nil {
			s.openapi.docs = map[string][]byte{}
		}
		s.openapi.docs[l.Lang.String()] = b
	}
	s.openapi.mu.Unlock()
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Set(fiber.HeaderContentLanguage, l.Lang.String())
	return c.Send(b)
}

type obj = map[string]any

// openAPIDoc builds the document from the registered routes.
func (s *Server) openAPIDoc(l *locales.Localizer) obj {
	paths := obj{}
	for _, r := range apiRoutes(s.app) {
		method, path, _ := strings.Cut(r, " ")
		d := apiDoc{Tag: "other", Summary: r, Status: 200}
		if doc, ok := apiDocs[r]; ok {
			d = doc
		}
		oapiPath, params := openAPIPath(path)
		item, _ := paths[oapiPath].(obj)
		if item == nil {
			item = obj{}
			paths[oapiPath] = item
		}
		item[strings.ToLower(method)] = s.operation(method, path, d, params, nil)
	}
	// Each service's submission, with its own payload schema and example.
	if d, ok := apiDocs["POST /api/v1/services/:id/submissions"]; ok && s.Catalog != nil {
		for _, svc := range s.Catalog.All() {
			if svc.Prefix != "" {
				continue // an existing e-service behind the front door takes no submissions
			}
			d := d
			d.Summary = l.T(svc.MsgTitle())
			op := s.operation("POST", "", d, nil, svc)
			op["operationId"] = "submit-" + svc.ID
			media := obj{"schema": s.payloadSchema(l, svc)}
			if ex, ok := example(svc); ok {
				media["example"] = ex
			}
			content := obj{"application/json": media}
			if mp := multipartSchema(svc); mp != nil {
				// Files may come in the submission itself (uploads.go).
				content["multipart/form-data"] = obj{"schema": mp}
			}
			op["requestBody"] = obj{"required": true, "content": content}
			paths["/api/v1/services/"+svc.ID+"/submissions"] = obj{"post": op}
		}
	}
	return obj{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"info": obj{"title": "Service gateway API", "version": "1",
			"description": "JSON for programs: the catalog, submissions and their status, and what staff, departments and administrators use. " +
				"Errors are RFC 9457 problem details (application/problem+json), with errors (field -> message) for validation failures."},
		"servers":    []any{obj{"url": s.Config.PublicURL + "/"}},
		"paths":      paths,
		"components": s.components(),
		"tags": []any{obj{"name": "catalog"}, obj{"name": "submissions"}, obj{"name": "identity"}, obj{"name": "departments"},
			obj{"name": "desk"}, obj{"name": "usage"}, obj{"name": "admin"}, obj{"name": "meta"}},
	}
}

// openAPIPath turns "/api/v1/services/:id" into "/api/v1/services/{id}".
func openAPIPath(path string) (string, []string) {
	parts := strings.Split(path, "/")
	var params []string
	for i, p := range parts {
		if strings.HasPrefix(p, ":") {
			name := strings.TrimSuffix(p[1:], "?")
			parts[i] = "{" + name + "}"
			params = append(params, name)
		}
	}
	return strings.Join(parts, "/"), params
}

// operation is one operation object; svc is set for a service's own
// submission path.
func (s *Server) operation(method, path string, d apiDoc, params []string, svc *gateway.Service) obj {
	id := strings.ToLower(method) + strings.NewReplacer("/api/v1", "", "/", "-", ":", "", ".", "-").Replace(path)
	op := obj{"operationId": id, "summary": d.Summary, "tags": []string{d.Tag}}
	var ps []any
	for _, p := range params {
		ps = append(ps, obj{"name": p, "in": "path", "required": true, "schema": obj{"type": "string", "maxLength": 128}})
	}
	names := make([]string, 0, len(d.Query))
	for k := range d.Query {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ps = append(ps, obj{"name": k, "in": "query", "description": d.Query[k], "schema": obj{"type": "string"}})
	}
	if method == fiber.MethodPost && strings.HasSuffix(path, "/submissions") || svc != nil {
		ps = append(ps, obj{"name": "Idempotency-Key", "in": "header", "description": "makes the request repeatable: the same key and body give the same receipt",
			"schema": obj{"type": "string", "maxLength": 255}})
	}
	if d.Access == department && d.Changes {
		ps = append(ps, obj{"name": headerTimestamp, "in": "header", "description": "with a signed callback: Unix seconds", "schema": obj{"type": "string"}},
			obj{"name": headerSignature, "in": "header", "description": "with a signed callback: HMAC-SHA256 with the route's secret of timestamp + \".\" + \"POST /api/v1/submissions/{id}/status\\n\" + body", "schema": obj{"type": "string"}})
	}
	if len(ps) > 0 {
		op["parameters"] = ps
	}
	switch d.Body {
	case "":
	case "File": // the raw bytes of an upload, any content type
		op["requestBody"] = obj{"required": true, "content": obj{"*/*": obj{"schema": obj{"type": "string", "format": "binary"}}}}
	case "Answer": // JSON, or multipart/form-data with files (answer.go)
		op["requestBody"] = obj{"required": true, "content": obj{"application/json": obj{"schema": ref(d.Body)},
			"multipart/form-data": obj{"schema": obj{"type": "object", "required": []string{"answer"}, "properties": obj{
				"answer": obj{"type": "string"}, "token": obj{"type": "string"},
				intake.AnswerFileField: obj{"type": "array", "items": obj{"type": "string", "format": "binary"}, "maxItems": intake.AnswerMaxFiles,
					"description": "PDF, JPEG or PNG (by content), at most 10 MB each"}}}}}}
	default:
		op["requestBody"] = obj{"required": true, "content": obj{"application/json": obj{"schema": ref(d.Body)}}}
	}
	okSchema := obj{"type": "object"}
	if d.Response != "" {
		okSchema = ref(d.Response)
	}
	okResp := obj{"description": "success", "content": obj{"application/json": obj{"schema": okSchema}}}
	if d.Response == "Receipt" {
		okResp["headers"] = obj{"Location": obj{"description": "the status URL", "schema": obj{"type": "string"}},
			"Idempotent-Replayed": obj{"description": "true when an earlier request with the same key made the receipt", "schema": obj{"type": "string"}}}
		okResp["content"] = obj{"application/json": obj{"schema": okSchema, "example": obj{"id": "k3qv5x2m7c4d6f8h2j4l6n8p2r4t6v8x",
			"reference": "2026-ABCD-EFGH", "status": "received", "status_url": "/api/v1/submissions/k3qv5x2m7c4d6f8h2j4l6n8p2r4t6v8x",
			"receipt_url": "/s/k3qv5x2m7c4d6f8h2j4l6n8p2r4t6v8x"}}}
	}
	responses := obj{
		fmt.Sprint(d.Status): okResp,
		"default": obj{"description": "an RFC 9457 problem; validation failures (422) have errors, field -> message",
			"content": obj{"application/problem+json": obj{"schema": ref("Problem"), "examples": obj{
				"validation": obj{"value": obj{"type": "about:blank", "title": "Kontrollera uppgifterna", "status": 422,
					"detail": "Några fält behöver rättas.", "code": "invalid", "errors": obj{"description": "Skriv minst 10 tecken."}}},
				"not_found": obj{"value": obj{"type": "about:blank", "title": "Sidan finns inte", "status": 404,
					"detail": "Det finns ingen sådan e-tjänst.", "code": "not_found"}},
			}}}},
	}
	for _, st := range d.Also {
		responses[fmt.Sprint(st)] = okResp
	}
	op["responses"] = responses
	switch d.Access {
	case public:
		op["security"] = []any{obj{}, obj{"session": []string{}}, obj{"bearerAssertion": []string{}}}
		if d.Changes {
			op["security"] = []any{obj{}, obj{"session": []string{}, "csrfHeader": []string{}}, obj{"bearerAssertion": []string{}}}
		}
	case signedIn:
		op["security"] = []any{obj{"session": []string{}}, obj{"bearerAssertion": []string{}}}
		if d.Changes {
			op["security"] = []any{obj{"session": []string{}, "csrfHeader": []string{}}, obj{"bearerAssertion": []string{}}}
		}
	case department:
		op["security"] = []any{obj{"bearerAssertion": []string{}}, obj{"callbackSignature": []string{}}}
	}
	return op
}

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

// payloadSchema is a service's payload schema (schema.go) as the request
// body: the document's dialect replaces $schema and $id, and a staff
// member filing for a visitor adds on_behalf_of.
func (s *Server) payloadSchema(l *locales.Localizer, svc *gateway.Service) obj {
	sch := maps.Clone(s.schema(l, svc))
	delete(sch, "$schema")
	delete(sch, "$id")
	props := maps.Clone(sch["properties"].(map[string]any))
	props[onBehalfKey] = ref("OnBehalfOf")
	sch["properties"] = props
	return sch
}

// example is a payload a service accepts: every required field that is
// shown for the values before it (with the first option, the smallest
// number, and text of the least length). A required field with a pattern
// cannot be made up: then there is no example (ok false).
func example(svc *gateway.Service) (obj, bool) {
	out := obj{}
	values := map[string][]string{}
	for i := range svc.Fields { // conditions refer only to earlier fields
		f := &svc.Fields[i]
		if !f.Required || !svc.Shown(values)[f.Name] {
			continue
		}
		if f.Pattern != "" {
			return nil, false
		}
		k, ok := f.Kind()
		if !ok {
			return nil, false
		}
		v := k.Example(f)
		out[f.Name] = v
		values[f.Name] = []string{fmt.Sprint(v)}
		if f.Type == gateway.FieldMultiSelect {
			values[f.Name] = []string{f.Options[0]}
		}
	}
	return out, true
}

// components are the shared schemas and the security schemes.
func (s *Server) components() obj {
	str := obj{"type": "string"}
	history := obj{"type": "array", "items": obj{"type": "object", "required": []string{"status", "at"}, "properties": obj{
		"status": ref("Status"), "at": obj{"type": "string", "format": "date-time"}, "note": str, "message": str}}}
	service := obj{"type": "object", "required": []string{"id", "title", "summary", "department", "category", "assurance"},
		"properties": obj{"id": str, "version": str, "title": str, "summary": str, "department": str, "department_name": str,
			"category": str, "category_name": str, "keywords": obj{"type": "array", "items": str},
			"assurance": obj{"enum": []string{"none", "low", "substantial", "high"}}, "channels": obj{"type": "array", "items": str},
			"url": str, "submit_url": str, "language": str, "description": str,
			"fields": obj{"type": "array", "items": obj{"type": "object", "required": []string{"name", "type", "label"}}},
			"schema": obj{"type": "object", "description": "JSON Schema (2020-12) of the payload"}}}
	statuses := make([]string, len(gateway.Statuses))
	for i, st := range gateway.Statuses {
		statuses[i] = string(st)
	}
	return obj{
		"schemas": obj{
			"Status":      obj{"enum": statuses},
			"Service":     service,
			"ServiceList": obj{"type": "object", "required": []string{"services"}, "properties": obj{"services": obj{"type": "array", "items": ref("Service")}}},
			"Payload": obj{"type": "object", "description": "the service's field values; see the service's own path or GET /api/v1/services/{id} for its schema",
				"additionalProperties": obj{"type": []string{"string", "number", "boolean", "array", "null", "object"}}},
			"OnBehalfOf": obj{"type": "object", "description": "staff filing for a visitor at a service point (role staff)",
				"properties": obj{"personnummer": str, "identity_check": obj{"type": "string", "enum": []string{"id_document", "eid", "known"}},
					"consent": obj{"type": "boolean"}, "service_point": str}},
			"Receipt": obj{"type": "object", "required": []string{"id", "reference", "status", "status_url", "receipt_url"},
				"properties": obj{"id": str, "reference": str, "status": ref("Status"), "status_url": str, "receipt_url": str,
					"channel": str, "service_point": str, "subject": str, "print_url": str,
					"receipt": ref("SignedReceipt"), "payload": obj{"type": "object", "description": "the payload as stored; its canonical SHA-256 is signed"}}},
			"Attachment": obj{"type": "object", "description": "a stored upload (README: attachment contract)", "required": []string{"id", "field", "name", "type", "size", "sha256"},
				"properties": obj{"id": str, "field": str, "name": str, "type": str, "size": obj{"type": "integer"}, "sha256": str}},
			"SignedReceipt": obj{"type": "object", "description": "the signed receipt (README: Receipts)", "required": []string{"jws", "kid", "verification_code", "keys_url"},
				"properties": obj{"jws": obj{"type": "string", "description": "compact JWS, EdDSA"}, "kid": str, "verification_code": str, "keys_url": str}},
			"Submission": obj{"type": "object", "required": []string{"id", "reference", "service", "status", "case_reference", "history"},
				"properties": obj{"id": str, "reference": str, "service": str, "status": ref("Status"), "case_reference": str,
					"delayed": obj{"type": "boolean"}, "created_at": obj{"type": "string", "format": "date-time"}, "history": history,
					"status_url": str, "receipt_url": str, "receipt": ref("SignedReceipt"),
					"satisfaction": obj{"type": "object", "description": "the resident's answer, for the owning department only",
						"properties": obj{"score": obj{"type": "integer", "minimum": 1, "maximum": 5}, "comment": str}}}},
			"StatusUpdate": obj{"type": "object", "required": []string{"status"}, "properties": obj{"status": ref("Status"),
				"message": obj{"type": "string", "maxLength": maxStatusMessage}, "case_reference": obj{"type": "string", "maxLength": maxCaseReference},
				"at": obj{"type": "string", "format": "date-time"}}},
			"NotifyPrefs": obj{"type": "object", "properties": obj{"email": str, "mobile": str,
				"events": obj{"type": "array", "items": ref("Status")}, "updated_at": str}},
			"Answer":          obj{"type": "object", "required": []string{"answer"}, "properties": obj{"answer": str, "token": str}},
			"CloseDeadLetter": obj{"type": "object", "properties": obj{"status": ref("Status"), "message": str}},
			"ReplayNotification": obj{"type": "object", "required": []string{"event"}, "additionalProperties": false,
				"properties": obj{"event": obj{"type": "string", "maxLength": 128}}},
			"ReplayFollowUp": obj{"type": "object", "required": []string{"id", "seq"}, "additionalProperties": false,
				"properties": obj{"id": str, "seq": obj{"type": "integer", "minimum": 1}}},
			"Replayed": obj{"type": "object", "required": []string{"replayed"}, "properties": obj{"replayed": obj{"type": "boolean"}, "reference": str}},
			"MessageDeadLetters": obj{"type": "object", "required": []string{"notifications", "followups"}, "properties": obj{
				"notifications": obj{"type": "array", "items": obj{"type": "object", "required": []string{"event", "id", "status", "attempt"},
					"properties": obj{"event": str, "id": str, "status": str, "attempt": obj{"type": "integer"}, "reason": str,
						"department": str, "kind": obj{"type": "string", "description": "absent: a message to the resident; webhook: a department webhook"},
						"type": str, "at_ms": obj{"type": "integer"}}}},
				"followups": obj{"type": "array", "items": obj{"type": "object", "required": []string{"id", "seq"},
					"properties": obj{"id": str, "seq": obj{"type": "integer"}, "department": str, "reason": str, "at_ms": obj{"type": "integer"}}}}}},
			"Contact": obj{"type": "object", "required": []string{"service", "channel", "outcome"}, "properties": obj{
				"service": str, "channel": str, "outcome": str, "language": str, "service_point": str}},
			"Me": obj{"type": "object", "required": []string{"subject", "roles", "assurance"}, "properties": obj{
				"subject": str, "name": str, "roles": obj{"type": "array", "items": str}, "assurance": str, "personnummer": str,
				"department": str, "service_point": str, "machine": obj{"type": "boolean"}, "csrf_token": str}},
			"Problem": obj{"type": "object", "required": []string{"type", "title", "status"}, "description": "RFC 9457 problem details",
				"properties": obj{"type": str, "title": str, "status": obj{"type": "integer"}, "detail": str, "code": str,
					"errors": obj{"type": "object", "description": "field -> message, for validation failures", "additionalProperties": str}}},
		},
		"securitySchemes": obj{
			"session": obj{"type": "apiKey", "in": "cookie", "name": sessionCookie,
				"description": "the session of a person signed in at /auth/login"},
			"csrfHeader": obj{"type": "apiKey", "in": "header", "name": CSRFConfigDefault.Header,
				"description": "with the session, on every call that changes something: the csrf_token of GET /api/v1/me"},
			"bearerAssertion": obj{"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
				"description": "a machine client's signed assertion (GATEWAY_CLIENTS_FILE); no CSRF token needed"},
			"callbackSignature": obj{"type": "apiKey", "in": "header", "name": headerSignature,
				"description": "a back-end's signed status update: HMAC-SHA256 with the route's secret, with " + headerTimestamp},
		},
	}
}

// multipartSchema is the multipart/form-data body of a submission to a
// service with file fields: every field as a form value, the file fields
// as files (several parts under one name for several files); nil for a
// service without file fields.
func multipartSchema(svc *gateway.Service) obj {
	props := obj{}
	files := false
	for i := range svc.Fields {
		f := &svc.Fields[i]
		if f.Type == gateway.FieldFile {
			files = true
			props[f.Name] = obj{"type": "array", "items": obj{"type": "string", "format": "binary"}, "maxItems": f.AttachmentMaxFiles()}
			continue
		}
		props[f.Name] = obj{"type": "string"}
	}
	if !files {
		return nil
	}
	return obj{"type": "object", "properties": props}
}
