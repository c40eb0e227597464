package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/rueidis"
)

// KeyCheck returns the key check the store holds, first recording check if
// it holds none or if replace is true. The key has no TTL. SET NX answers
// nil when the key exists.
func (s *Store) KeyCheck(ctx context.Context, check string, replace bool) (held string, recorded bool, err error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	set := s.c.B().Set().Key(s.keys.keyCheck()).Value(check)
	var cmd rueidis.Completed
	if replace {
		cmd = set.Build()
	} else {
		cmd = set.Nx().Build()
	}
	switch err := s.c.Do(ctx, cmd).Error(); {
	case err == nil:
		return check, true, nil
	case !rueidis.IsRedisNil(err):
		return "", false, fmt.Errorf("storage/redis: record the key check: %w", err)
	}
	held, err = s.HeldKeyCheck(ctx)
	return held, false, err
}

// HeldKeyCheck returns the key check the store holds, "" if none.
func (s *Store) HeldKeyCheck(ctx context.Context) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	held, err := s.c.Do(ctx, s.c.B().Get().Key(s.keys.keyCheck()).Build()).ToString()
	if err != nil && !rueidis.IsRedisNil(err) {
		return "", fmt.Errorf("storage/redis: read the key check: %w", err)
	}
	return held, nil
}

// DurabilityRisk reads the persistence settings of every node (CONFIG GET)
// and reports each node that keeps no append-only file (a restart of it
// loses what it acknowledged since its last snapshot, or everything without
// one) or leaves its flushes to the operating system (appendfsync no: a
// crash of the machine loses the last 30 s or so). appendfsync everysec,
// which loses about a second in a crash of the machine, is the README's to
// describe, not a risk reported at each start.
func (s *Store) DurabilityRisk(ctx context.Context) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		risks []string
		errs  []error
	)
	for addr, node := range s.c.Nodes() {
		cfg, err := node.Do(ctx, node.B().ConfigGet().Parameter("appendonly", "appendfsync", "save").Build()).AsStrMap()
		if err != nil {
			errs = append(errs, fmt.Errorf("storage/redis: read the persistence settings of %s: %w", addr, err))
			continue
		}
		switch {
		case cfg["appendonly"] == "no" && strings.TrimSpace(cfg["save"]) == "":
			risks = append(risks, fmt.Sprintf("Redis at %s persists nothing (appendonly no, no save points): a restart of it loses every application, code and failure budget", addr))
		case cfg["appendonly"] == "no":
			risks = append(risks, fmt.Sprintf("Redis at %s keeps no append-only file (appendonly no): a restart of it loses what it acknowledged since its last snapshot, so used codes may verify again and failed attempts be forgotten", addr))
		case cfg["appendfsync"] == "no":
			risks = append(risks, fmt.Sprintf("Redis at %s leaves the flushes of its append-only file to the operating system (appendfsync no): a crash of the machine can lose the last 30 s or so of acknowledged writes", addr))
		}
	}
	slices.Sort(risks)
	return strings.Join(risks, "; "), errors.Join(errs...)
}
