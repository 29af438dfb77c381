package redisstore

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// StartEmbedded starts an in-process Redis-protocol server (miniredis) on a
// free port on 127.0.0.1, for the zero-configuration demo. It keeps
// everything in memory: nothing survives a restart of the process, and it is
// not meant for production. Keys expire by the wall clock. stop shuts it down.
func StartEmbedded() (addr string, stop func(), err error) {
	m := miniredis.NewMiniRedis()
	// Without this miniredis only expires keys when told to; the demo
	// should forget delivered payloads and idempotency keys like Redis does.
	m.ClockTTL(true)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return "", nil, fmt.Errorf("redisstore: start embedded server: %w", err)
	}
	return m.Addr(), m.Close, nil
}
