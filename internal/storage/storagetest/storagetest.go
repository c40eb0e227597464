// Package storagetest is the conformance suite of storage.Store. Every backend
// runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { return openEmpty(t) })
//	}
//
// Run checks one handle; RunShared checks two handles on one database, the
// shape of two otpd instances sharing a store; Bench measures the operations
// otpd's requests make.
//
// Time is injected: every test works from a fixed base time and never
// sleeps, so the suite suits backends that decide expiry only from the times
// they are given.
//
// A backend whose codes, failures and send records expire by themselves (a
// time to live on the database's own clock, as with Redis) runs the suite
// with RunWith and Options{ExpiresByTTL: true}: see Options. Its TTLs must
// be durations relative to the times it is given, never those times as
// absolute deadlines: the suite's times lie years ahead of the wall clock,
// and the TTLs it causes (a minute or more) outlast every test.
package storagetest

import (
	"slices"
	"testing"

	"github.com/otpd/otpd/internal/storage"
)

// test is a conformance test on one fresh, empty store.
type test struct {
	name string
	run  func(t *testing.T, s storage.Store)
}

// sharedTest is a conformance test on two handles on one fresh, empty
// database; Run passes the same handle twice.
type sharedTest struct {
	name string
	run  func(t *testing.T, a, b storage.Store)
}

// Run runs the conformance suite. open returns a fresh, empty store for one
// subtest (the backend registers its cleanup with t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	RunWith(t, open, Options{})
}

// Options adapts the suite to how a backend works.
type Options struct {
	// ExpiresByTTL says that the backend lets codes, failures and send
	// records expire by themselves, with a time to live set when they are
	// written, instead of deleting them in Purge, which then only trims the
	// outbox and the message records. The suite then checks, instead of their deletion by Purge,
	// that they carry a time to live matching their lifetime; the store
	// must implement TTLReporter. Expiry as the contract defines it (rule 4
	// of VerifyCode, the failure window, the lease and expiry of send
	// records) is still decided from the given times, and checked as for
	// every backend.
	ExpiresByTTL bool
}

// RunWith runs the conformance suite, adapted by opts. Run(t, open) is
// RunWith(t, open, Options{}).
func RunWith(t *testing.T, open func(t *testing.T) storage.Store, opts Options) {
	purge := purgeTests
	if opts.ExpiresByTTL {
		purge = purgeTTLTests
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"Apps", appTests},
		{"ListApps", listAppsTests},
		{"DeleteApp", deleteAppTests},
		{"UpdateSMSChannel", updateSMSTests},
		{"VerifyCode", verifyTests},
		{"FailureBudget", budgetTests},
		{"Isolation", isolationTests},
		{"RecordSend", recordSendTests},
		{"DestinationLockout", lockoutTests},
		{"ClaimSend", sendTests},
		{"RecordSendOnce", sendOnceTests},
		{"Outbox", outboxTests},
		{"Messages", messageTests},
		{"Purge", purge},
		{"KeyCheck", keyCheckTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
			}
		})
	}
	t.Run("Concurrency", func(t *testing.T) {
		for _, tc := range slices.Concat(concurrencyTests, messageConcurrencyTests, keyCheckSharedTests) {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				tc.run(t, s, s)
			})
		}
	})
}

// RunShared runs the cross-handle part of the suite: open returns two
// independent handles on ONE fresh, empty database (the shape of two otpd
// instances). What one handle did must be visible at once through the other,
// and the atomic operations must stay atomic across them.
func RunShared(t *testing.T, open func(t *testing.T) (a, b storage.Store)) {
	t.Run("Visibility", func(t *testing.T) {
		for _, tc := range slices.Concat(visibilityTests, messageVisibilityTests) {
			t.Run(tc.name, func(t *testing.T) {
				a, b := open(t)
				tc.run(t, a, b)
			})
		}
	})
	t.Run("Concurrency", func(t *testing.T) {
		for _, tc := range slices.Concat(concurrencyTests, messageConcurrencyTests, keyCheckSharedTests) {
			t.Run(tc.name, func(t *testing.T) {
				a, b := open(t)
				tc.run(t, a, b)
			})
		}
	})
}
