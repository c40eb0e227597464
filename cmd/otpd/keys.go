package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/otpd/otpd/internal/accesskeys"
	"github.com/otpd/otpd/internal/otp"
	"github.com/otpd/otpd/internal/pinpointapi"
	"github.com/otpd/otpd/internal/storage"
)

// accessKeys are the access key pairs clients sign with, and where they
// came from.
type accessKeys struct {
	ring *accesskeys.Ring
	// file is the shared-credentials file the pairs are read from, again
	// every filesReread while otpd runs; nil for the pair of
	// OTPD_ACCESS_KEY_ID and OTPD_SECRET_ACCESS_KEY.
	file *accesskeys.File
	// generated: the file is the data directory's, made just now.
	generated bool
}

// filesReread is how often a running server reads again the files it
// takes changes from: its access keys and its TLS certificate.
const filesReread = 10 * time.Second

// first is the pair that otpd's start-up text shows a client, and that
// otpd bench signs with: the file's first.
func (k accessKeys) first() accesskeys.Pair { return k.ring.Pairs()[0] }

// fileName is the file the pairs are read from, "" for the environment's.
func (k accessKeys) fileName() string {
	if k.file == nil {
		return ""
	}
	return k.file.Path()
}

// credentialsFileName is in the AWS shared-credentials format, with one
// profile named otpd, so AWS_SHARED_CREDENTIALS_FILE can point at it.
const credentialsFileName = "credentials"

// credentialsProfile is the profile of the pair otpd generates.
const credentialsProfile = "otpd"

// loadAccessKeys returns the pair of OTPD_ACCESS_KEY_ID and
// OTPD_SECRET_ACCESS_KEY, or else the pairs of the file OTPD_ACCESS_KEYS_FILE
// names, or else those of the data directory's credentials file, which it
// generates (mode 0600) with one pair on first start. (config.validate
// refuses a pair and a file together, and a pair that is none, first, with
// the other problems.) log receives what the file's later reads find.
func loadAccessKeys(dataDir string, log *slog.Logger) (accessKeys, error) {
	if err := checkAccessKeyEnv(); err != nil {
		return accessKeys{}, err
	}
	path, named := accessKeysFile(dataDir)
	if path == "" {
		pair := accesskeys.Pair{AccessKeyID: os.Getenv("OTPD_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("OTPD_SECRET_ACCESS_KEY")}
		return accessKeys{ring: accesskeys.NewRing([]accesskeys.Pair{pair})}, nil
	}
	f, err := accesskeys.Open(path, log)
	generated := false
	if errors.Is(err, fs.ErrNotExist) && !named {
		_, generated, err = readOrCreateSecretFile(path, func() ([]byte, error) {
			p, err := accesskeys.Generate(credentialsProfile)
			if err != nil {
				return nil, err
			}
			return p.AppendProfile([]byte("# otpd's access key pairs, one profile each: sign Pinpoint API requests with one.\n" +
				"# otpd reads this file again while it runs: add a profile to rotate a key, and\n" +
				"# remove the old one once no client uses it (README: Keys).\n")), nil
		})
		if err == nil {
			f, err = accesskeys.Open(path, log)
		}
	}
	if err != nil {
		return accessKeys{}, accessKeysFileError(named, err)
	}
	return accessKeys{ring: f.Ring(), file: f, generated: generated}, nil
}

// accessKeysFile is the file of access key pairs otpd serve reads: the
// file OTPD_ACCESS_KEYS_FILE names (named), or the data directory's
// credentials file; "" when OTPD_ACCESS_KEY_ID and OTPD_SECRET_ACCESS_KEY
// give the one pair.
func accessKeysFile(dataDir string) (path string, named bool) {
	switch {
	case os.Getenv("OTPD_ACCESS_KEY_ID") != "" || os.Getenv("OTPD_SECRET_ACCESS_KEY") != "":
		return "", false
	case os.Getenv("OTPD_ACCESS_KEYS_FILE") != "":
		return os.Getenv("OTPD_ACCESS_KEYS_FILE"), true
	}
	return filepath.Join(dataDir, credentialsFileName), false
}

// accessKeysFileError introduces a problem with the file accessKeysFile
// named: by its variable, or as the data directory's.
func accessKeysFileError(named bool, err error) error {
	if named {
		return fmt.Errorf("OTPD_ACCESS_KEYS_FILE: %w", err)
	}
	return fmt.Errorf("access key pairs: %w", err)
}

// checkAccessKeyEnv reports what is wrong with the access key pair's
// variables: one set without the other, a pair that is none, or a pair
// together with OTPD_ACCESS_KEYS_FILE (which keys a client may sign with
// must not depend on a precedence rule).
func checkAccessKeyEnv() error {
	id, secret := os.Getenv("OTPD_ACCESS_KEY_ID"), os.Getenv("OTPD_SECRET_ACCESS_KEY")
	switch {
	case (id != "" || secret != "") && os.Getenv("OTPD_ACCESS_KEYS_FILE") != "":
		return errors.New("OTPD_ACCESS_KEYS_FILE and OTPD_ACCESS_KEY_ID/OTPD_SECRET_ACCESS_KEY are both set: set the pair or the file (which may hold several pairs)")
	case id != "" && secret != "":
		if err := accesskeys.CheckID(id); err != nil {
			return fmt.Errorf("OTPD_ACCESS_KEY_ID: %w", err)
		}
		if err := accesskeys.CheckSecret(secret); err != nil {
			return fmt.Errorf("OTPD_SECRET_ACCESS_KEY: %w", err)
		}
	case id != "" || secret != "":
		return errors.New("set both OTPD_ACCESS_KEY_ID and OTPD_SECRET_ACCESS_KEY, or neither (otpd then reads OTPD_ACCESS_KEYS_FILE or keeps a generated pair in the data directory)")
	}
	return nil
}

// checkKeyFiles reports what is wrong with the key files otpd serve would
// read, when their variables do not give the keys themselves: a file that
// does not hold a key. In the data directory, a file that does not exist
// is no problem (otpd serve generates it), and none is created. The file
// OTPD_HMAC_KEY_FILE names is checkHMACKeyFile's.
func checkKeyFiles(dataDir string, shared bool) []error {
	var errs []error
	if path, named := accessKeysFile(dataDir); path != "" && (named || !shared) {
		_, err := accesskeys.Open(path, nil)
		if err != nil && (named || !errors.Is(err, fs.ErrNotExist)) {
			errs = append(errs, accessKeysFileError(named, err))
		}
	}
	if !shared && os.Getenv("OTPD_HMAC_KEY") == "" && os.Getenv("OTPD_HMAC_KEY_FILE") == "" {
		path := filepath.Join(dataDir, hmacKeyFileName)
		if data, err := os.ReadFile(path); err == nil {
			if _, err := decodeHMACKey(string(data)); err != nil {
				errs = append(errs, fmt.Errorf("code hashing key: %s: %w", path, err))
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("code hashing key: %w", err))
		}
	}
	return errs
}

// hmacKeyFileName is the generated code-hashing secret in the data directory.
const hmacKeyFileName = "hmac.key"

// loadHMACKey returns the secret codes are hashed with: OTPD_HMAC_KEY (hex),
// else the file named by OTPD_HMAC_KEY_FILE (hex), else the data
// directory's hmac.key, generated on first start. It also says where it
// came from, for the log, and whether it generated it just now.
// (config.validate refuses both variables set, and a key in them that is
// none, first, with the other problems.)
func loadHMACKey(dataDir string) (key []byte, source string, generated bool, err error) {
	if v := os.Getenv("OTPD_HMAC_KEY"); v != "" {
		key, err := decodeHMACKey(v)
		if err != nil {
			return nil, "", false, fmt.Errorf("OTPD_HMAC_KEY: %w", err)
		}
		return key, "OTPD_HMAC_KEY", false, nil
	}
	if path := os.Getenv("OTPD_HMAC_KEY_FILE"); path != "" {
		key, err := readHMACKeyFile(path)
		if err != nil {
			return nil, "", false, err
		}
		return key, path, false, nil
	}
	path := filepath.Join(dataDir, hmacKeyFileName)
	data, generated, err := readOrCreateSecretFile(path, func() ([]byte, error) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		return []byte(hex.EncodeToString(key) + "\n"), nil
	})
	if err != nil {
		return nil, "", false, err
	}
	key, err = decodeHMACKey(string(data))
	if err != nil {
		return nil, "", false, fmt.Errorf("%s: %w", path, err)
	}
	return key, path, generated, nil
}

// storeKey is what adoptKey found of the store's code hashing key, and did.
type storeKey int

const (
	keyMatched  storeKey = iota // the store held this key's check
	keyRecorded                 // the store held none, and now holds this key's
	keyReplaced                 // the store held another check, and now holds this key's
	keyDiffers                  // the store holds another check, left as it was
)

// checkStoreKey makes sure that the store's codes are hashed with the key
// whose check (otp.KeyCheck) is given, a key that came from source
// (generated just now if generated). A store that holds no key check (a new
// one, or one from before otpd kept checks) is given this one; a key whose
// check differs is refused, since a server with another key would answer
// false to every right code and spend its users' attempts. With adopt, the
// check replaces the store's instead. A key generated for a store that it
// does not fit is removed again.
func checkStoreKey(ctx context.Context, st storage.Store, check, source string, generated, adopt bool) (storeKey, error) {
	found, held, err := adoptKey(ctx, st, check, adopt)
	if err == nil && found != keyDiffers {
		return found, nil
	}
	if generated {
		os.Remove(source)
	}
	if err != nil {
		return 0, err
	}
	if generated {
		return 0, fmt.Errorf("%s holds a database used with a code hashing key (check %s), but no %s: "+
			"if the key was moved, set OTPD_HMAC_KEY_FILE (or OTPD_HMAC_KEY) to it. "+
			"To start over with a new key, run otpd adopt-hmac-key --data-dir %s, which makes one "+
			"(every live code then stops verifying).", filepath.Dir(source), keyCheckPrefix(held), hmacKeyFileName, filepath.Dir(source))
	}
	return 0, fmt.Errorf("the code hashing key from %s (check %s) is not the one this store's codes are hashed with (check %s). "+
		"Every server on a store must use the same key, or it answers false to every right code: "+
		"give this server the store's key. To replace the key on purpose, stop every server and run "+
		"otpd adopt-hmac-key with the new key (every live code then stops verifying).", source, keyCheckPrefix(check), keyCheckPrefix(held))
}

// adoptKey reads the store's key check, recording check if the store holds
// none, or, with replace, in place of another; held is the store's check
// before any replacement.
func adoptKey(ctx context.Context, st storage.Store, check string, replace bool) (found storeKey, held string, err error) {
	held, recorded, err := st.KeyCheck(ctx, check, false)
	switch {
	case err != nil:
		return 0, "", fmt.Errorf("the store's key check: %w", err)
	case recorded:
		return keyRecorded, held, nil
	case held == check:
		return keyMatched, held, nil
	case !replace:
		return keyDiffers, held, nil
	}
	if _, _, err := st.KeyCheck(ctx, check, true); err != nil {
		return 0, "", fmt.Errorf("the store's key check: %w", err)
	}
	return keyReplaced, held, nil
}

// keyCheckPrefix is enough of a key check to tell keys apart in a log.
func keyCheckPrefix(check string) string { return check[:min(len(check), 11)] }

// logStoreKey warns of what checkStoreKey did to a store in use: replaced
// its key, or gave one to a store with applications but no check (created
// by otpd apps create before any server started, or by an earlier otpd),
// whose first server's key every other must then share.
func logStoreKey(ctx context.Context, log *slog.Logger, st storage.Store, found storeKey, check string) {
	switch found {
	case keyReplaced:
		log.Warn("the store now takes this server's code hashing key in place of another: codes hashed with that one no longer verify", "check", check)
	case keyRecorded:
		if apps, err := st.ListApps(ctx, "", 1); err == nil && len(apps) > 0 {
			log.Warn("the store has applications but no server had started on it yet (they were created by otpd apps create, or by an otpd "+
				"older than key checks): it now takes this server's code hashing key, and every instance must use this key, or it will be refused", "check", check)
		}
	}
}

// keyRecheck is how often a running server reads the store's key check
// again.
const keyRecheck = 10 * time.Second

// keyWatch reads the store's key check again while the server runs. A
// check replaced under it (otpd adopt-hmac-key while servers run) leaves
// this server hashing with the previous key: it then reports itself not
// ready, so that a load balancer stops sending it requests, and refuses
// the sends and verifications still sent to it (see otp.Config.KeyReplaced),
// until the store's check is its own again.
//
// A store that answers but whose check cannot be read (a PostgreSQL
// database whose schema was dropped under the server: every request then
// fails) makes it not ready too, until the check can be read again.
type keyWatch struct {
	st    storage.Store
	check string
	log   *slog.Logger
	stale atomic.Bool
	// unreadable is set when a recheck found the store answering but its
	// check unreadable, and cleared when a read succeeds; a recheck that
	// found the store not answering leaves it as it was (Ping reports
	// that).
	unreadable atomic.Bool
}

// run reads the store's check every interval until ctx is done.
func (w *keyWatch) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.recheck(ctx)
	}
}

// recheck reads the store's check once, writing nothing unless the store
// has lost it: then a server with the store's key records it again (the
// store lost its data, a restart without persistence, say), and a stale
// one does not, or it would bring back the key that was replaced. A store
// that does not answer leaves the state as it was (readiness reports the
// store itself); one that answers but cannot read its check is remembered
// as unreadable, which ready then confirms.
func (w *keyWatch) recheck(ctx context.Context) {
	held, err := w.st.HeldKeyCheck(ctx)
	if err != nil {
		if w.st.Ping(ctx) == nil {
			w.unreadable.Store(true)
		}
		return
	}
	w.unreadable.Store(false)
	if held == "" && !w.stale.Load() {
		if _, recorded, err := w.st.KeyCheck(ctx, w.check, false); err == nil && recorded {
			w.log.Warn("the store held no key check: it has lost its data (restarted without persistence?); it now takes this server's key again",
				"check", keyCheckPrefix(w.check))
		}
		return
	}
	switch stale := held != w.check; {
	case stale && !w.stale.Swap(true):
		w.log.Error("the store now takes another code hashing key (otpd adopt-hmac-key?): this server hashes with the previous one "+
			"and reports itself not ready, refusing sends and verifications; restart it with the store's key", "check", keyCheckPrefix(w.check), "store_check", keyCheckPrefix(held))
	case !stale && w.stale.Swap(false):
		w.log.Info("the store takes this server's code hashing key again; ready", "check", keyCheckPrefix(w.check))
	}
}

// replaced reports whether the store takes another key than this server's,
// as of the last recheck.
func (w *keyWatch) replaced() bool { return w.stale.Load() }

// ready is /readyz's question: not while the store's key is another, else
// whether the store answers, and then, if the last recheck could not read
// the store's check, whether it can now: a failure that has passed (a
// brief blip) makes no probe fail, and one that lasts (a schema dropped
// under the server) makes each fail, with the cause for the log, until it
// passes.
func (w *keyWatch) ready(ctx context.Context) error {
	if w.replaced() {
		return &pinpointapi.NotReady{Reason: "the store takes another code hashing key than this server's; restart this server with the store's key"}
	}
	if err := w.st.Ping(ctx); err != nil {
		return err
	}
	if !w.unreadable.Load() {
		return nil
	}
	if _, err := w.st.HeldKeyCheck(ctx); err != nil {
		return fmt.Errorf("%w: %w", &pinpointapi.NotReady{Reason: "the store answers but cannot read this server's code hashing key check, so it cannot serve requests (the log says why)"}, err)
	}
	w.unreadable.Store(false)
	return nil
}

// checkHMACKeyEnv reports what is wrong with the code hashing key's
// variables: both set (which key an instance hashes with must not depend on
// a precedence rule, since instances with different keys verify none of
// each other's codes), or OTPD_HMAC_KEY not a key. The file
// OTPD_HMAC_KEY_FILE names is read only by loadHMACKey, once: it may be a
// pipe (a process substitution, /dev/stdin), empty on a second read.
// checkHMACKeyFile reads it for --check-config.
func checkHMACKeyEnv() error {
	v, file := os.Getenv("OTPD_HMAC_KEY"), os.Getenv("OTPD_HMAC_KEY_FILE")
	switch {
	case v != "" && file != "":
		return errors.New("OTPD_HMAC_KEY and OTPD_HMAC_KEY_FILE are both set: set one")
	case v != "":
		if _, err := decodeHMACKey(v); err != nil {
			return fmt.Errorf("OTPD_HMAC_KEY: %w", err)
		}
	}
	return nil
}

// checkHMACKeyFile reports what is wrong with the file OTPD_HMAC_KEY_FILE
// names, if it is set: unreadable, or holding no key. Only --check-config
// asks, since it reads the file (see checkHMACKeyEnv).
func checkHMACKeyFile() error {
	file := os.Getenv("OTPD_HMAC_KEY_FILE")
	if file == "" || os.Getenv("OTPD_HMAC_KEY") != "" {
		return nil // none, or both set, which checkHMACKeyEnv reports
	}
	_, err := readHMACKeyFile(file)
	return err
}

// readHMACKeyFile reads the key in the file OTPD_HMAC_KEY_FILE names.
func readHMACKeyFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("OTPD_HMAC_KEY_FILE: %w", err)
	}
	key, err := decodeHMACKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("OTPD_HMAC_KEY_FILE %s: %w", path, err)
	}
	return key, nil
}

func decodeHMACKey(s string) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("want hex-encoded bytes: %v", err)
	}
	if len(key) < otp.MinMACKeyLength {
		return nil, fmt.Errorf("want at least %d bytes (%d hex characters); got %d bytes", otp.MinMACKeyLength, 2*otp.MinMACKeyLength, len(key))
	}
	return key, nil
}

// readOrCreateSecretFile returns the content of path, first creating it
// (mode 0600) with generate's content if it does not exist. The file appears
// whole or not at all: it is written under a temporary name and linked into
// place, so that of several processes starting at once, one creates it and
// the others read that one's content. created reports whether this call
// created it.
func readOrCreateSecretFile(path string, generate func() ([]byte, error)) (data []byte, created bool, err error) {
	data, err = os.ReadFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return data, false, err
	}
	content, err := generate()
	if err != nil {
		return nil, false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Close(); err != nil {
		return nil, false, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		data, err := os.ReadFile(path) // another process was first
		return data, false, err
	} else if err != nil {
		return nil, false, err
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync() // make the new name durable
		dir.Close()
	}
	return content, true, nil
}

// looseSecretFile reports whether path, a secret otpd generated, can be
// read by anyone but its owner.
func looseSecretFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Perm()&0o077 != 0
}
