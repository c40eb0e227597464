// Package architecture has no code: its tests check that otpd's packages
// keep the shape the README describes. Every package says what it is for in
// a doc comment; dependencies point inward (backends and carriers import
// only their contracts, the domain only the contracts, the HTTP layer the
// domain); and only cmd/otpd names concrete backends and carriers.
package architecture
