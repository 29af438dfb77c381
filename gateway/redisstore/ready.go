package redisstore

import (
	"context"
	"time"
)

// Ready reports whether the gateway can accept submissions: Redis answers
// and takes a write on the node that holds the submissions. A Redis out of
// memory (maxmemory reached with noeviction) still answers PING but
// refuses every write with OOM; this probe fails then, so /readyz takes
// the replica out of the load balancer instead of answering 200 while
// every submission fails.
func (s *Store) Ready(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.rdb.Set(ctx, s.keys.ready(), "1", 10*time.Second).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}
