package redis

import (
	"context"
	"fmt"
	"strings"

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

// DurabilityRisk reads the persistence settings of every node (CONFIG GET)
// and reports the first that keeps no append-only file: a restart of it
// loses what it acknowledged since its last snapshot, or everything without
// one. appendfsync everysec, which loses about a second in a crash of the
// machine, is the README's to describe, not a risk reported at each start.
func (s *Store) DurabilityRisk(ctx context.Context) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	for addr, node := range s.c.Nodes() {
		cfg, err := node.Do(ctx, node.B().ConfigGet().Parameter("appendonly", "save").Build()).AsStrMap()
		if err != nil {
			return "", fmt.Errorf("storage/redis: read the persistence settings of %s: %w", addr, err)
		}
		switch {
		case cfg["appendonly"] != "no":
		case strings.TrimSpace(cfg["save"]) == "":
			return fmt.Sprintf("Redis at %s persists nothing (appendonly no, no save points): a restart of it loses every application, code and failure budget", addr), nil
		default:
			return fmt.Sprintf("Redis at %s keeps no append-only file (appendonly no): a restart of it loses what it acknowledged since its last snapshot, so used codes may verify again and failed attempts be forgotten", addr), nil
		}
	}
	return "", nil
}
