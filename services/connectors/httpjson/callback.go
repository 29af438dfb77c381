package httpjson

import "time"

// CallbackMaxSkew is how far the timestamp of a signed status update from a
// back-end may be from the gateway's clock.
const CallbackMaxSkew = 5 * time.Minute

// Target names the back-end this connector delivers to, for its circuit
// breaker and metrics: scheme, host and port of the URL, never its path or
// query (which may carry a token).
func (c *Connector) Target() string { return c.origin }

// VerifyCallback checks a request a back-end sends to the gateway, such as
// a status update, signed like a delivery: X-Gateway-Timestamp and
// X-Gateway-Signature over timestamp + "." + signed with the route's secret
// (see Sign), where signed is what the caller says was signed (for a status
// update, gateway.StatusUpdateSigned: method, path and body). The timestamp
// must be within CallbackMaxSkew of now.
func (c *Connector) VerifyCallback(timestamp, signature string, signed []byte) error {
	return Verify(c.secret, timestamp, signature, signed, c.now(), CallbackMaxSkew)
}
