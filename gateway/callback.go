package gateway

// StatusUpdatePath is the path of a back-end's status update for the
// submission id: POST /api/v1/submissions/{id}/status (a contract).
func StatusUpdatePath(id string) string { return "/api/v1/submissions/" + id + "/status" }

// StatusUpdateSigned is what a back-end signs for a status update, in place
// of the bare body: method, path (which names the submission) and body,
//
//	"POST /api/v1/submissions/{id}/status\n" + body
//
// so that an update signed for one submission cannot be sent for another.
// The signature itself is HMAC-SHA256(secret, timestamp + "." + this), as
// for a delivery; a delivery's body never starts with "POST ", so neither
// signature passes for the other.
func StatusUpdateSigned(method, id string, body []byte) []byte {
	b := make([]byte, 0, len(method)+len(id)+40+len(body))
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, StatusUpdatePath(id)...)
	b = append(b, '\n')
	return append(b, body...)
}
