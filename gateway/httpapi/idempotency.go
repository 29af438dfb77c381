package httpapi

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

// idempotencyLocker marks a request with an Idempotency-Key as in flight, so
// that a second request with the same key, sent before the first is done,
// is answered 409 instead of racing it (*redisstore.Store implements it).
type idempotencyLocker interface {
	LockIdempotency(ctx context.Context, idem gateway.Idempotency, ttl time.Duration) (release func(), err error)
}

// inFlightTTL bounds how long a request holds its key when the process
// dies before releasing it.
const inFlightTTL = 10 * time.Second

// idempotencyScope is whom an Idempotency-Key belongs to: the signed-in
// principal, or else the client's address.
func idempotencyScope(c *fiber.Ctx) string {
	if p := principal(c); p != nil && p.Subject != "" {
		return "user:" + p.Subject
	}
	return "ip:" + clientIP(c)
}

// lockIdempotencyKey takes the in-flight lock for the request's
// Idempotency-Key, if it has one, and returns the function that releases
// it. It fails with a 409 problem when another request holds the key.
func (s *Server) lockIdempotencyKey(c *fiber.Ctx) (func(), error) {
	key := c.Get("Idempotency-Key")
	l, ok := s.Store.(idempotencyLocker)
	if key == "" || len(key) > 255 || !ok {
		return func() {}, nil
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	return l.LockIdempotency(ctx, gateway.Idempotency{Scope: idempotencyScope(c), Key: key}, inFlightTTL)
}
