package redisstore

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

// Paged lists of a person's and a department's submissions (My pages, the
// department list), newest first: order (created at, id) descending, the
// order of the index sorted sets (score: creation time in ms, member: the
// submission id).
//
// A cursor names the entry a page continues from by its score and id, not
// by its rank, so reading a page costs O(log n + page) in Redis
// (ZREVRANGEBYSCORE with LIMIT 0 page), and a cursor still works when
// retention has removed its entry or older ones, or new submissions came
// in since: it continues with the next entry in order. "o<ms>.<id>" pages
// to older entries, "n<ms>.<id>" to newer ones.

// Page is one page of a listing (the domain type).
type Page = gateway.SubmissionPage

// MaxPage is the largest page; maxTies is how many entries of one
// millisecond a cursor steps over (more in one millisecond for one person
// or department are skipped).
const (
	MaxPage = 200
	maxTies = 1000
)

// ErrCursor is returned for a cursor this store did not make.
var ErrCursor = gateway.Errorf(gateway.EInvalid, "error.bad_request", errors.New("redisstore: malformed cursor"))

// SubjectPage lists a person's submissions from cursor ("" for the
// newest), limit at a time (at most MaxPage), without payloads.
func (s *Store) SubjectPage(ctx context.Context, subject, cursor string, limit int) (Page, error) {
	return s.page(ctx, s.keys.subject(subject), cursor, limit)
}

// DepartmentPage lists a department's submissions like SubjectPage.
func (s *Store) DepartmentPage(ctx context.Context, department, cursor string, limit int) (Page, error) {
	return s.page(ctx, s.keys.dept(department), cursor, limit)
}

type cursorPos struct {
	newer bool
	score int64
	id    string
}

func parseCursor(c string) (cursorPos, error) {
	if len(c) > 64 || len(c) < 2 || (c[0] != 'o' && c[0] != 'n') {
		return cursorPos{}, ErrCursor
	}
	ms, id, ok := strings.Cut(c[1:], ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < 0 || !validID(id) {
		return cursorPos{}, ErrCursor
	}
	return cursorPos{newer: c[0] == 'n', score: n, id: id}, nil
}

func makeCursor(dir byte, z redis.Z) string {
	id, _ := z.Member.(string)
	return string(dir) + strconv.FormatInt(int64(z.Score), 10) + "." + id
}

func (s *Store) page(ctx context.Context, key, cursor string, limit int) (Page, error) {
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	var pos *cursorPos
	if cursor != "" {
		p, err := parseCursor(cursor)
		if err != nil {
			return Page{}, err
		}
		pos = &p
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var ties, rest *redis.ZSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if s.IndexKeep > 0 { // past retention: gone from the index
			p.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatInt(s.now().Add(-s.IndexKeep).UnixMilli(), 10))
		}
		switch {
		case pos == nil:
			rest = p.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: "+inf", Min: "-inf", Count: int64(limit + 1)})
		case pos.newer:
			sc := strconv.FormatInt(pos.score, 10)
			ties = p.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: sc, Max: sc, Count: maxTies})
			rest = p.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: "(" + sc, Max: "+inf", Count: int64(limit + 1)})
		default:
			sc := strconv.FormatInt(pos.score, 10)
			ties = p.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: sc, Min: sc, Count: maxTies})
			rest = p.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: "(" + sc, Min: "-inf", Count: int64(limit + 1)})
		}
		return nil
	})
	if err != nil {
		return Page{}, unavailable(err)
	}
	// The entries after the cursor in the direction of travel.
	var zs []redis.Z
	if ties != nil {
		for _, z := range ties.Val() {
			id, _ := z.Member.(string)
			if pos.newer && id > pos.id || !pos.newer && id < pos.id {
				zs = append(zs, z)
			}
		}
	}
	zs = append(zs, rest.Val()...)
	more := len(zs) > limit
	zs = zs[:min(len(zs), limit)]
	if pos != nil && pos.newer {
		slices.Reverse(zs) // newest first
	}
	var pg Page
	if len(zs) > 0 {
		switch {
		case pos == nil:
			if more {
				pg.Older = makeCursor('o', zs[len(zs)-1])
			}
		case pos.newer:
			if more {
				pg.Newer = makeCursor('n', zs[0])
			}
			pg.Older = makeCursor('o', zs[len(zs)-1])
		default:
			if more {
				pg.Older = makeCursor('o', zs[len(zs)-1])
			}
			pg.Newer = makeCursor('n', zs[0])
		}
	} else if pos != nil {
		// Nothing left this way (retention removed it meanwhile): the
		// other direction continues from the same place.
		flip := map[bool]string{true: "o", false: "n"}[pos.newer]
		pg.Older, pg.Newer = "", ""
		if pos.newer {
			pg.Older = flip + cursor[1:]
		} else {
			pg.Newer = flip + cursor[1:]
		}
	}
	ids := make([]string, len(zs))
	for i, z := range zs {
		ids[i], _ = z.Member.(string)
	}
	out, gone, err := s.records(ctx, ids)
	if err != nil {
		return Page{}, err
	}
	if len(gone) > 0 { // past their retention: drop from the index
		_ = s.rdb.ZRem(ctx, key, gone...).Err()
	}
	pg.Submissions = out
	return pg, nil
}
