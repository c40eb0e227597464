package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"

	"github.com/redis/rueidis"
)

// script is a Lua script run with EVALSHA (EVAL the first time a server
// lacks it). Every script names all its keys in KEYS, and they share one hash
// slot, so that it runs on a cluster too. Times are milliseconds since the
// epoch, passed as decimal strings; Lua's numbers (doubles) hold them exactly.
//
// A read-only script is retried after a network error, like rueidis's
// read-only commands; it still runs as EVALSHA, not EVALSHA_RO, which Redis
// before 7.0 lacks.
type script struct {
	lua      *rueidis.Lua
	sha1     string
	readOnly bool
}

func newScript(src string, readOnly bool) *script {
	sum := sha1.Sum([]byte(src))
	sc := &script{sha1: hex.EncodeToString(sum[:]), readOnly: readOnly}
	if readOnly {
		sc.lua = rueidis.NewLuaScriptRetryable(src)
	} else {
		sc.lua = rueidis.NewLuaScript(src)
	}
	return sc
}

// exec runs the script.
func (sc *script) exec(ctx context.Context, c rueidis.Client, keys []string, args ...string) rueidis.RedisResult {
	return sc.lua.Exec(ctx, c, keys, args)
}

// execMulti runs the script together with other commands, in one round
// trip (on a cluster, in parallel on the nodes that own their keys), and
// returns the script's result and the others'.
func (sc *script) execMulti(ctx context.Context, c rueidis.Client, keys, args []string, others ...rueidis.Completed) (rueidis.RedisResult, []rueidis.RedisResult) {
	// A server that lacks the script answers NOSCRIPT: the script alone
	// is then run again through rueidis.Lua, which falls back to EVAL.
	cmd := c.B().Evalsha().Sha1(sc.sha1).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
	if sc.readOnly {
		cmd = cmd.ToRetryable()
	}
	res := c.DoMulti(ctx, append([]rueidis.Completed{cmd}, others...)...)
	first := res[0]
	if err, ok := rueidis.IsRedisErr(first.Error()); ok && err.IsNoScript() {
		first = sc.exec(ctx, c, keys, args...)
	}
	return first, res[1:]
}

// execEach runs the script once for each of execs (whose keys may lie in
// different slots), in one round trip (on a cluster, in parallel on the
// nodes that own their keys), and returns their results in order.
func (sc *script) execEach(ctx context.Context, c rueidis.Client, execs []rueidis.LuaExec) []rueidis.RedisResult {
	if len(execs) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, len(execs))
	for i, e := range execs {
		cmds[i] = c.B().Evalsha().Sha1(sc.sha1).Numkeys(int64(len(e.Keys))).Key(e.Keys...).Arg(e.Args...).Build()
		if sc.readOnly {
			cmds[i] = cmds[i].ToRetryable()
		}
	}
	res := c.DoMulti(ctx, cmds...)
	for i, r := range res {
		// A server that lacks the script: run it through rueidis.Lua,
		// which falls back to EVAL.
		if err, ok := rueidis.IsRedisErr(r.Error()); ok && err.IsNoScript() {
			res[i] = sc.exec(ctx, c, execs[i].Keys, execs[i].Args...)
		}
	}
	return res
}
