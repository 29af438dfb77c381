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
// X-Gateway-Signature over timestamp + "." + body with the route's secret
// (see Sign). The timestamp must be within CallbackMaxSkew of now.
func (c *Connector) VerifyCallback(timestamp, signature string, body []byte) error {
	return Verify(c.secret, timestamp, signature, body, c.now(), CallbackMaxSkew)
}
