package redisstore

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// BenchmarkCreate measures the durable write of the submit path (one Lua
// script: idempotency check, reference, record, payload, history, stream
// entry) against a real redis-server, per appendfsync policy, from one
// goroutine (latency) and from many (throughput).
func BenchmarkCreate(b *testing.B) {
	policies := []struct {
		name string
		opts []redistest.Option
	}{
		{"aof=no", nil},
		{"aof=everysec", []redistest.Option{redistest.WithAOF("everysec")}},
		{"aof=always", []redistest.Option{redistest.WithAOF("always")}},
	}
	for _, p := range policies {
		for _, parallel := range []bool{false, true} {
			name := p.name + "/serial"
			if parallel {
				name = p.name + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				srv := redistest.Start(b, p.opts...)
				s := New(srv.Client(b), "")
				sub := newSubmission()
				create := func(i int) {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					in := *sub
					idem := Idempotency{Scope: "bench", Key: strconv.Itoa(i), BodyHash: "h"}
					if _, _, err := s.Create(ctx, &in, idem); err != nil {
						b.Error(err)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				if !parallel {
					for i := 0; b.Loop(); i++ {
						create(i)
					}
					return
				}
				b.SetParallelism(8) // many requests in flight, as behind a load balancer
				var n atomicCounter
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						create(n.next())
					}
				})
			})
		}
	}
}

// atomicCounter hands out distinct idempotency keys to parallel goroutines.
type atomicCounter struct{ v atomic.Int64 }

func (c *atomicCounter) next() int { return int(c.v.Add(1)) }

// BenchmarkCreateWaitReplica measures what GATEWAY_REDIS_WAIT_REPLICAS=1
// costs: the durable write with and without WAIT for one local replica
// (both processes on this machine, no AOF), from one goroutine.
func BenchmarkCreateWaitReplica(b *testing.B) {
	primary := redistest.Start(b)
	redistest.Start(b, redistest.WithArgs("--replicaof", "127.0.0.1", strconv.Itoa(port(b, primary.Addr()))))
	rdb := primary.Client(b)
	ctx := context.Background()
	for rdb.Do(ctx, "WAIT", 1, 100).Val() != int64(1) {
		rdb.Set(ctx, "sync", "1", time.Minute)
	}
	for _, wait := range []int{0, 1} {
		b.Run("wait="+strconv.Itoa(wait), func(b *testing.B) {
			s := New(rdb, "")
			s.WaitReplicas, s.WaitTimeout = wait, time.Second
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				in := *newSubmission()
				if _, _, err := s.Create(ctx, &in, Idempotency{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
