// Command otpd is a self-hosted one-time-password server that speaks the
// Amazon Pinpoint OTP API (SendOTPMessage, VerifyOTPMessage and the
// application operations they need).
//
//	otpd serve                         run the server
//	otpd apps create --name NAME       create an application
//	otpd apps list                     list applications
//	otpd outbox                        show what the development outbox delivered
//	otpd messages                      show every message sent and its delivery status
//	otpd bench                         load-test otpd and compare it with a bare HTTP server
//	otpd flush-test                    measure how long the disk takes to flush a write
//	otpd adopt-hmac-key                make the store take a new code hashing key
//	otpd generate-access-key           print a new access key pair for the keys file
//	otpd version                       print the version of this build
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

const usage = `otpd: a self-hosted one-time-password server for the Amazon Pinpoint OTP API

Usage:
  otpd serve [flags]                                       serve the API (otpd serve -h for flags)
  otpd apps create --name NAME [--id ID]                   create an application, print it as JSON
  otpd apps list                                           list applications as JSON
  otpd outbox [--destination E164] [--json] [--limit N]    show the development outbox: the newest N (100), oldest first
  otpd messages [--destination E164] [--json] [--limit N]  every message sent: carrier and delivery status
  otpd bench (--start | --target URL) [flags]              load-test otpd over HTTP (otpd bench -h for flags)
  otpd flush-test [--size N] [--busy N]                    how long the disk under --data-dir takes to flush a write
  otpd adopt-hmac-key                                      make the store take a new code hashing key (every live code stops verifying)
  otpd generate-access-key [--profile NAME]                print a new access key pair, a profile for OTPD_ACCESS_KEYS_FILE
  otpd version                                             the version of this build

The apps, outbox and messages commands take --data-dir (OTPD_DATA_DIR, default
./otpd-data) or --store (OTPD_STORE), like serve, and may run while a server uses
the same store.
`

func main() {
	err := run(os.Args[1:])
	if code := exitCode(err); code != 0 {
		if !errors.As(err, new(logged)) {
			fmt.Fprintln(os.Stderr, "otpd:", err)
		}
		os.Exit(code)
	}
}

// exitCode is the process's exit status after run returned err: 0 when it
// succeeded or printed the help asked for, 2 otherwise.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("missing subcommand")
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:])
	case "apps":
		return runApps(args[1:])
	case "outbox":
		return outboxListing.run(args[1:])
	case "messages":
		return messagesListing.run(args[1:])
	case "bench":
		return runBench(args[1:], os.Stdout)
	case "flush-test":
		return runFlushTest(args[1:], os.Stdout)
	case "adopt-hmac-key":
		return runAdoptHMACKey(args[1:])
	case "generate-access-key":
		return runGenerateAccessKey(args[1:], os.Stdout, time.Now())
	case "version", "--version":
		fmt.Println("otpd", version())
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

// parseFlags parses args, which must hold flags only. Asked for help (-h or
// --help), it prints the command's usage to standard output and returns
// flag.ErrHelp; given a bad flag, it prints the usage to standard error and
// returns the error, for main to print.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard) // the flag package would print the error, then the usage
	if err := fs.Parse(args); err != nil {
		fs.SetOutput(usageOutput(err))
		fs.Usage()
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (this command takes flags only; see -h)", fs.Name(), fs.Arg(0))
	}
	return nil
}

// usageOutput is where a command's usage goes after parsing its flags
// failed with err: standard output when help was asked for, standard error
// after a mistake.
func usageOutput(err error) *os.File {
	if errors.Is(err, flag.ErrHelp) {
		return os.Stdout
	}
	return os.Stderr
}

func newFlagSet(name, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), help)
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}
