package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Group commit. Concurrent calls of the hot write scripts (createScript for
// every submission, completeScript for every delivery) are sent together:
// the calls that arrive while a pipeline is on its way wait, and the next
// pipeline carries all of them (at most maxBatch), one EVALSHA per call.
// Redis runs each script on its own, atomically, exactly as if it had come
// alone, so a batch changes no guarantee: each call keeps its own keys,
// arguments, reply and idempotency, one member's refusal (e.g. an
// idempotency mismatch or a taken reference) touches no other member, and
// a batch re-sent by go-redis after a broken connection re-runs scripts
// that are all safe to run twice. What it saves is round trips: one write
// and one read system call on each side for the batch instead of one per
// call, and one network wait for all. Under light load a batch is a single
// call and costs what it cost before.

// maxBatch is the most calls one pipeline carries.
const maxBatch = 64

// batchLanes is how many pipelines may be on their way at once. More than
// one keeps a slow answer (an fsync with appendfsync always) from holding up
// everything behind it; each lane uses one connection of the pool. Chosen
// by BenchmarkCreate/parallel (16 callers) on the 2-core machine: with
// appendfsync always 1 lane 400-630 µs per create, 2 lanes 290, 4 lanes
// 185-230, 8 lanes 110-125 (one connection per caller, before: 200-245);
// with everysec all within 58-78 µs.
const batchLanes = 8

// scriptCall is one call of a script waiting for its batch.
type scriptCall struct {
	ctx    context.Context // the caller's: a call it gave up on before its batch left is not sent
	script *redis.Script
	keys   []string
	args   []any
	// replicated: the caller waits for WaitReplicas (creates do).
	replicated bool

	// Filled in by the batch before done is closed.
	reply any
	err   error
	// werr is ErrNotReplicated (as CodeOutcomeUnknown) when WaitReplicas is
	// set and fewer replicas acknowledged the batch.
	werr error
	done chan struct{}
}

// batcher gathers concurrent script calls into pipelines.
type batcher struct {
	s *Store

	mu    sync.Mutex
	queue []*scriptCall
	busy  int // lanes with a pipeline on its way (or about to be)

	pipelines atomic.Int64 // pipelines sent, for tests
}

// call runs one script call as part of a batch and returns its reply. ctx
// bounds only the wait: a call whose ctx ends while its batch is on its way
// may still have run (the caller reports the outcome as unknown).
func (b *batcher) call(ctx context.Context, replicated bool, script *redis.Script, keys []string, args []any) (reply any, werr, err error) {
	c := &scriptCall{ctx: ctx, script: script, keys: keys, args: args, replicated: replicated, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	lead := b.busy < batchLanes
	if lead {
		b.busy++
	}
	b.mu.Unlock()
	if lead {
		// On a goroutine of its own, so that this caller still leaves when
		// its ctx ends while the pipeline waits for an answer.
		go b.flush()
	}
	select {
	case <-c.done:
		return c.reply, c.werr, c.err
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// flush sends batches from the queue on one lane until the queue is
// empty, then gives the lane back. Called with a lane taken for it.
func (b *batcher) flush() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxBatch)
		if n == 0 {
			b.busy--
			b.mu.Unlock()
			return
		}
		batch := make([]*scriptCall, n)
		copy(batch, b.queue)
		rest := copy(b.queue, b.queue[n:])
		clear(b.queue[rest:])
		b.queue = b.queue[:rest]
		b.mu.Unlock()

		b.exec(batch)
	}
}

// exec sends one batch and fills in every call's outcome. A script Redis
// does not know yet (NOSCRIPT: nothing ran) is loaded and its calls are
// sent again; with WaitReplicas, WAIT closes each pipeline that carries a
// call asking for it, on the same connection, and stands for every call in
// it.
func (b *batcher) exec(batch []*scriptCall) {
	s := b.s
	ctx, cancel := context.WithTimeout(context.Background(), s.opTimeout())
	defer cancel()
	waitTimeout := s.WaitTimeout
	if waitTimeout <= 0 {
		waitTimeout = DefaultWaitTimeout // WAIT 0 would block for ever
	}
	todo := batch[:0:0]
	for _, c := range batch {
		if c.ctx != nil && c.ctx.Err() != nil {
			// Its caller has gone (and reported the outcome as unknown):
			// not sent, so it did not happen.
			c.err = c.ctx.Err()
			close(c.done)
			continue
		}
		todo = append(todo, c)
	}
	for try := 0; len(todo) > 0; try++ {
		cmds := make([]*redis.Cmd, len(todo))
		var wait *redis.Cmd
		replicated := false
		b.pipelines.Add(1)
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range todo {
				cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
				replicated = replicated || c.replicated
			}
			if s.WaitReplicas > 0 && replicated {
				wait = p.Do(ctx, "wait", s.WaitReplicas, waitTimeout.Milliseconds())
			}
			return nil
		})
		var werr error
		if wait != nil {
			switch n, err := wait.Int64(); {
			case err != nil:
				werr = writeFailed(fmt.Errorf("%w: WAIT: %w", ErrNotReplicated, err))
			case n < int64(s.WaitReplicas):
				werr = writeFailed(fmt.Errorf("%w: %d of %d within %s", ErrNotReplicated, n, s.WaitReplicas, waitTimeout))
			}
		}
		var again []*scriptCall
		var loaded map[*redis.Script]error // made at the first NOSCRIPT
		for i, c := range todo {
			err := cmds[i].Err()
			if redis.HasErrorPrefix(err, "NOSCRIPT") && try == 0 {
				lerr, seen := loaded[c.script]
				if !seen {
					lerr = c.script.Load(ctx, s.rdb).Err()
					if loaded == nil {
						loaded = map[*redis.Script]error{}
					}
					loaded[c.script] = lerr
				}
				if lerr == nil {
					again = append(again, c)
					continue
				}
				err = lerr
			}
			c.reply, c.err, c.werr = cmds[i].Val(), err, werr
			if err != nil {
				c.reply = nil
			}
			close(c.done)
		}
		todo = again
	}
}

// opTimeout is OpTimeout or its default.
func (s *Store) opTimeout() time.Duration {
	if s.OpTimeout <= 0 {
		return DefaultOpTimeout
	}
	return s.OpTimeout
}

// errBadReply is the cause of a script reply of an unexpected shape.
var errBadReply = errors.New("unexpected script reply")

// stringsOf converts a script's array reply to strings.
func stringsOf(reply any) ([]string, error) {
	arr, ok := reply.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %T", errBadReply, reply)
	}
	out := make([]string, len(arr))
	for i, v := range arr {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %T in array", errBadReply, v)
		}
		out[i] = s
	}
	return out, nil
}

// intOf converts a script's integer reply.
func intOf(reply any) (int, error) {
	n, ok := reply.(int64)
	if !ok {
		return 0, fmt.Errorf("%w: %T", errBadReply, reply)
	}
	return int(n), nil
}
