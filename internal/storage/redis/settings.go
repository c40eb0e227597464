package redis

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"
)

// KeyCheck returns the key check the store holds, first recording check if
// it holds none or if replace is true. The key has no TTL. (SET NX answers
// nil when the key exists.)
func (s *Store) KeyCheck(ctx context.Context, check string, replace bool) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	set := s.c.B().Set().Key(s.keys.keyCheck()).Value(check)
	var cmd rueidis.Completed
	if replace {
		cmd = set.Build()
	} else {
		cmd = set.Nx().Build()
	}
	if err := s.c.Do(ctx, cmd).Error(); err != nil && !rueidis.IsRedisNil(err) {
		return "", fmt.Errorf("storage/redis: key check: %w", err)
	}
	held, err := s.c.Do(ctx, s.c.B().Get().Key(s.keys.keyCheck()).Build()).ToString()
	if err != nil {
		return "", fmt.Errorf("storage/redis: key check: %w", err)
	}
	return held, nil
}
