package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
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

// Help asked of a command goes to standard output and exits 0; a mistake
// in its flags prints the usage to standard error and exits 2.
func TestHelpIsNoError(t *testing.T) {
	for _, args := range [][]string{{"serve", "-h"}, {"outbox", "--help"}, {"messages", "-h"}, {"apps", "create", "-h"}, {"flush-test", "--help"}} {
		err := run(args)
		if !errors.Is(err, flag.ErrHelp) || usageOutput(err) != os.Stdout || exitCode(err) != 0 {
			t.Errorf("%q: %v (usage to %v, exit %d), want flag.ErrHelp, its usage on standard output, exit 0", args, err, usageOutput(err).Name(), exitCode(err))
		}
	}
	if err := run([]string{"apps", "--help"}); exitCode(err) != 0 {
		t.Errorf("apps --help: %v, want exit 0", err)
	}
	err := run([]string{"outbox", "--bogus"})
	if err == nil || usageOutput(err) != os.Stderr || exitCode(err) != 2 {
		t.Errorf("outbox --bogus: %v (usage to %v, exit %d), want an error, its usage on standard error, exit 2", err, usageOutput(err).Name(), exitCode(err))
	}
}

// TestVersion checks that otpd version names the build and its Go.
func TestVersion(t *testing.T) {
	v := version()
	if !strings.HasSuffix(v, ", "+runtime.Version()) || strings.HasPrefix(v, ",") {
		t.Errorf("version() = %q, want the build's version, then %s", v, runtime.Version())
	}
	if err := run([]string{"version"}); err != nil {
		t.Errorf("otpd version: %v", err)
	}
}

// TestEmptyListingNamesTheDestination checks that a listing with nothing to
// show says whether the whole of it is empty or only what --destination
// asked for.
func TestEmptyListingNamesTheDestination(t *testing.T) {
	dir := t.TempDir()
	if err := runApps([]string{"create", "--name", "shop", "--data-dir", dir}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		l    listing
		args []string
		want string
	}{
		{outboxListing, nil, "The outbox is empty.\n"},
		{outboxListing, []string{"--destination", "+14255550142"}, "The outbox holds no message to +14255550142.\n"},
		{messagesListing, nil, "No message has been sent.\n"},
		{messagesListing, []string{"--destination", "+14255550142"}, "No message has been sent to +14255550142.\n"},
	} {
		out := stdoutOf(t, func() error { return c.l.run(append(c.args, "--data-dir", dir)) })
		if out != c.want {
			t.Errorf("%s %q printed %q, want %q", c.l.name, c.args, out, c.want)
		}
	}
}

// stdoutOf returns what f printed on standard output, failing the test if
// f fails.
func stdoutOf(t *testing.T, f func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	ferr := f()
	os.Stdout = saved
	w.Close()
	out := <-done
	if ferr != nil {
		t.Fatal(ferr)
	}
	return string(out)
}
