package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/otpd/otpd/internal/sms"
)

// announce tells the operator what to do next. The secret key is printed
// only to an interactive terminal; otherwise the log names the file that
// holds it. Under JSON logs only the log line is written, which holds what
// the banner says (the endpoint, region, key ID and where its secret is,
// the carrier and its --config, the store): the banner's plain text would
// break a stream of JSON records.
func (s *server) announce(addr string) {
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	endpoint := scheme + "://" + clientHostPort(addr)
	first, file := s.accessKeys.first(), s.accessKeys.fileName()
	attrs := []any{"endpoint", endpoint, "addr", addr, "region", s.cfg.Region,
		"carrier", s.carrier, "access_key_id", first.AccessKeyID}
	if file == "" {
		attrs = append(attrs, "secret_access_key", "from OTPD_SECRET_ACCESS_KEY")
	} else {
		attrs = append(attrs, "credentials_file", file, "profile", first.Profile)
	}
	if pairs := s.accessKeys.ring.Pairs(); len(pairs) > 1 {
		ids := make([]string, len(pairs))
		for i, p := range pairs {
			ids[i] = p.AccessKeyID
		}
		attrs = append(attrs, "access_key_ids", ids)
	}
	if s.carriers != nil {
		attrs = append(attrs, "config", s.cfg.CarrierConfig)
	}
	attrs = append(attrs, "store", s.storeName(), "version", version())
	s.log.Info("otpd is serving the Pinpoint API", attrs...)
	if host, _, _ := net.SplitHostPort(addr); s.carriers == nil && !sms.IsLoopbackHost(host) {
		s.log.Warn("THE DEVELOPMENT OUTBOX IS THE CARRIER AND otpd LISTENS BEYOND LOOPBACK: sends report success but reach no phone; codes are readable with `otpd outbox`",
			"addr", addr)
	}
	if s.cfg.LogFormat == "json" {
		return
	}

	var secret string
	switch {
	case file == "":
		// The pair came from the environment: the operator has it.
		secret = `"$OTPD_SECRET_ACCESS_KEY"`
	case isTerminal(os.Stdout):
		secret = first.SecretAccessKey
	default:
		// Not a terminal (a log file, a pipe): read the secret from its
		// file rather than printing it.
		secret = readSecretCommand(file, first.Profile)
	}
	region := s.cfg.Region
	carrierLine := fmt.Sprintf("Messages go to the development outbox: nothing is texted; read them with: %s outbox%s", selfCommand(), s.storeFlag())
	readCode := selfCommand() + " outbox" + s.storeFlag() + "   # the text and its code"
	if s.carriers != nil {
		carrierLine = "Messages go out through the carriers and routes of " + s.cfg.CarrierConfig + "."
		readCode = "# read the code on the phone"
	}
	if clientHostPort(addr) != addr {
		carrierLine = "It listens on every address of this machine (" + addr + "); other machines use one of them.\n" + carrierLine
	}
	fmt.Printf(`
otpd is serving the Pinpoint OTP API at %[1]s (region %[2]s).
%[7]s

Point the aws CLI, boto3 or an AWS SDK at it (in another shell):

  export AWS_ENDPOINT_URL_PINPOINT=%[1]s
  export AWS_ACCESS_KEY_ID=%[3]s
  export AWS_SECRET_ACCESS_KEY=%[4]s
  export AWS_REGION=%[2]s AWS_DEFAULT_REGION=%[2]s

Then create an application, send a code, read it and verify it:

  aws pinpoint create-app --create-application-request Name=MyApp
  aws pinpoint send-otp-message --application-id APPLICATION_ID \
    --send-otp-message-request-parameters 'Channel=SMS,BrandName=ExampleCorp,CodeLength=6,ValidityPeriod=10,AllowedAttempts=3,Language=en-US,OriginationIdentity=+18555550142,DestinationIdentity=+14255550142,ReferenceId=SampleReferenceId'
  %[8]s
  aws pinpoint verify-otp-message --application-id APPLICATION_ID \
    --verify-otp-message-request-parameters 'DestinationIdentity=+14255550142,ReferenceId=SampleReferenceId,Otp=CODE'

`, endpoint, region, first.AccessKeyID, secret, selfCommand(), s.storeFlag(), carrierLine, readCode)
}

// readSecretCommand is a shell word that reads the secret of profile from
// the shared-credentials file, for the start-up text when it must not show
// the secret itself.
func readSecretCommand(file, profile string) string {
	if path, err := filepath.Abs(file); err == nil {
		file = path
	}
	if strings.ContainsAny(profile, "'\n") {
		return fmt.Sprintf("the aws_secret_access_key of [%s] in %s", profile, file)
	}
	// From the profile's header to the next one, the value of the setting
	// (name = value or name: value), without what follows it (a carriage
	// return).
	name := strings.NewReplacer(`\`, `\\`, `/`, `\/`, `.`, `\.`, `*`, `\*`, `[`, `\[`, `]`, `\]`, `^`, `\^`, `$`, `\$`).Replace(profile)
	return fmt.Sprintf(`"$(sed -n '/^[[:space:]]*\[%s\]/,/^[[:space:]]*\[/s/^[[:space:]]*%s[[:space:]]*[=:][[:space:]]*\([^[:space:]]*\).*/\1/p' %s)"`,
		name, caseless("aws_secret_access_key"), shellQuote(file))
}

// caseless is s as a sed basic regular expression that matches it in any
// case, as the AWS SDKs match a setting's name: [aA][wW][sS]_....
func caseless(s string) string {
	var b strings.Builder
	for _, c := range s {
		if lower, upper := unicode.ToLower(c), unicode.ToUpper(c); lower != upper {
			b.WriteString("[" + string(lower) + string(upper) + "]")
		} else {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// clientHostPort returns the address a client on this machine reaches the
// listener at addr by: addr itself, or the loopback address in its place
// when addr is every address of the machine (0.0.0.0 or [::]), which is no
// address to connect to.
func clientHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// selfCommand is how the operator ran otpd, for the commands it suggests:
// "go run ./cmd/otpd" when it was built by go run, else the program's path.
func selfCommand() string {
	if strings.Contains(os.Args[0], "go-build") {
		return "go run ./cmd/otpd"
	}
	return os.Args[0]
}

// storeName describes the store for the log, without secrets.
func (s *server) storeName() string {
	if s.cfg.Store != "" {
		return redactStoreURL(s.cfg.Store)
	}
	return "embedded database in " + s.cfg.DataDir
}

// storeFlag is the flag other commands need to reach this store, or nothing
// for the default data directory. A password in a store URL is not shown.
func (s *server) storeFlag() string {
	switch {
	case s.cfg.Store != "" && redactStoreURL(s.cfg.Store) != s.cfg.Store && s.cfg.Store == os.Getenv("OTPD_STORE"):
		// The URL holds a password, which is not printed: the variable
		// holds it, and the shell refuses to run the command without it.
		return ` --store "${OTPD_STORE:?}"`
	case s.cfg.Store != "":
		return " --store " + shellQuote(redactStoreURL(s.cfg.Store))
	case filepath.Clean(s.cfg.DataDir) == "otpd-data":
		return ""
	}
	return " --data-dir " + shellQuote(s.cfg.DataDir)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isTerminal reports whether f is an interactive terminal.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
