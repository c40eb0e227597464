package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/otpd/otpd/internal/pinpointapi"
)

// `otpd outbox` and `otpd messages` refuse a destination that is not an
// E.164 number and a limit outside 1 to pinpointapi.MaxListing, as the
// signed listings do, before they open any store.
func TestListingFlags(t *testing.T) {
	for _, l := range []listing{outboxListing, messagesListing} {
		for _, c := range []struct {
			args []string
			flag string
		}{
			{[]string{"--destination", "abc"}, "--destination"},
			{[]string{"--limit", "0"}, "--limit"},
			{[]string{"--limit", "-1"}, "--limit"},
			{[]string{"--limit", fmt.Sprint(pinpointapi.MaxListing + 1)}, "--limit"},
		} {
			err := l.run(append(c.args, "--data-dir", t.TempDir()))
			if err == nil || !strings.Contains(err.Error(), c.flag) {
				t.Errorf("%s %q: %v, want an error naming %s", l.name, c.args, err, c.flag)
			}
		}
	}
}

// Help asked of a command is no error: main exits 0 on flag.ErrHelp, after
// parseFlags printed the usage to standard output.
func TestHelpIsNoError(t *testing.T) {
	for _, args := range [][]string{{"serve", "-h"}, {"outbox", "--help"}, {"messages", "-h"}, {"apps", "create", "-h"}, {"flush-test", "--help"}} {
		if err := run(args); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%q: %v, want flag.ErrHelp", args, err)
		}
	}
	if err := run([]string{"apps", "--help"}); err != nil {
		t.Errorf("apps --help: %v", err)
	}
	if err := run([]string{"outbox", "--bogus"}); err == nil || errors.Is(err, flag.ErrHelp) {
		t.Errorf("outbox --bogus: %v, want an error", err)
	}
}
