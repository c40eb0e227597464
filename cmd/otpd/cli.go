package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otpd/otpd/internal/accesskeys"
	"github.com/otpd/otpd/internal/otp"
	"github.com/otpd/otpd/internal/pinpointapi"
	"github.com/otpd/otpd/internal/sms/outbox"
	"github.com/otpd/otpd/internal/storage"
)

// runApps is `otpd apps create|list`.
func runApps(args []string) error {
	const usage = "usage: otpd apps create --name NAME [--id ID] | otpd apps list (each takes -h)"
	if len(args) == 0 {
		return errors.New(usage)
	}
	var cfg config
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Println(usage)
		return nil
	case "create":
		fs := newFlagSet("apps create", "otpd apps create --name NAME [--id ID]\n\n"+
			"Creates an application and prints its ApplicationResponse as JSON. --id keeps an ID\n"+
			"from Pinpoint (32 lowercase hex characters); without it otpd picks a random one.")
		storeFlags(fs, &cfg)
		region, account := arnFlags(fs)
		name := fs.String("name", "", "the application's display name (required)")
		id := fs.String("id", "", "the application ID to use, e.g. one migrated from Pinpoint")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if *name == "" {
			return errors.New("apps create: --name is required")
		}
		req := otp.NewApp{ID: *id, Name: *name}
		if err := otp.CheckNewApp(req); err != nil {
			return err // before a database is created for it
		}
		return withService(cfg, true, func(ctx context.Context, svc *otp.Service) error {
			app, err := svc.CreateApp(ctx, req)
			if err != nil {
				return err
			}
			return printJSON(os.Stdout, pinpointapi.AppResponse(app, *region, *account))
		})
	case "list":
		fs := newFlagSet("apps list", "otpd apps list\n\nPrints every application as a JSON array.")
		storeFlags(fs, &cfg)
		region, account := arnFlags(fs)
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		return withService(cfg, false, func(ctx context.Context, svc *otp.Service) error {
			list := []pinpointapi.ApplicationResponse{}
			for after := ""; ; {
				apps, more, err := svc.Apps(ctx, after, 1000)
				if err != nil {
					return err
				}
				for _, app := range apps {
					list = append(list, pinpointapi.AppResponse(app, *region, *account))
				}
				if !more {
					return printJSON(os.Stdout, list)
				}
				after = apps[len(apps)-1].ID
			}
		})
	}
	return fmt.Errorf("apps: unknown subcommand %q (want create or list)", args[0])
}

// arnFlags registers the settings ARNs are made of, as `otpd serve` has them.
func arnFlags(fs interface {
	String(name, value, usage string) *string
}) (region, account *string) {
	region = fs.String("region", env("OTPD_REGION", "us-east-1"), "the region in ARNs (OTPD_REGION)")
	account = fs.String("account-id", env("OTPD_ACCOUNT_ID", "000000000000"), "the account ID in ARNs (OTPD_ACCOUNT_ID)")
	return region, account
}

// withStore opens the store for one CLI command; only a command that
// creates something may create the database.
func withStore(cfg config, create bool, f func(ctx context.Context, st storage.Store) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, created, err := openStore(ctx, cfg, create)
	if err != nil {
		return err
	}
	if created {
		// Not an error, since an application may be created before the
		// first start; but a mistyped --data-dir shows here.
		fmt.Fprintf(os.Stderr, "otpd: created a new database at %s: otpd serve --data-dir %s will use it\n",
			filepath.Join(cfg.DataDir, databaseFileName), cfg.DataDir)
	}
	defer st.Close()
	return f(ctx, st)
}

// withService opens the store with a Service over it for one CLI command.
// The service needs a MAC key and a carrier only to send or verify, which
// the CLI never does: a throwaway key and the outbox suffice.
func withService(cfg config, create bool, f func(ctx context.Context, svc *otp.Service) error) error {
	return withStore(cfg, create, func(ctx context.Context, st storage.Store) error {
		svc, err := otp.NewService(otp.Config{Store: st, Carrier: outbox.New(st, nil), MACKey: make([]byte, otp.MinMACKeyLength)})
		if err != nil {
			return err
		}
		return f(ctx, svc)
	})
}

// listing is a command that lists records from the store: its flags, and
// how it fetches and shows them.
type listing struct {
	name, help string
	empty      string   // printed when there is nothing to list
	emptyFor   string   // the same with --destination, a format of it
	columns    []string // of the table
	// fetch reads the records and returns them in their JSON form and as
	// table rows.
	fetch func(ctx context.Context, st storage.Store, destination string, limit int) (entries any, rows [][]string, err error)
}

// run parses the listing's flags (--destination, --json, --limit and the
// store's) and prints the records.
func (l listing) run(args []string) error {
	var cfg config
	fs := newFlagSet(l.name, l.help)
	storeFlags(fs, &cfg)
	dest := fs.String("destination", "", "only messages to this E.164 number")
	asJSON := fs.Bool("json", false, "print a JSON array")
	limit := fs.Int("limit", 100, fmt.Sprintf("at most this many messages, the newest (1 to %d)", pinpointapi.MaxListing))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := pinpointapi.CheckListing(*dest, *limit); err != nil {
		return fmt.Errorf("%s: --%w", l.name, err)
	}
	var (
		entries any
		rows    [][]string
	)
	err := withStore(cfg, false, func(ctx context.Context, st storage.Store) error {
		var err error
		entries, rows, err = l.fetch(ctx, st, *dest, *limit)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(os.Stdout, entries)
	}
	if len(rows) == 0 {
		if *dest != "" {
			fmt.Printf(l.emptyFor+"\n", *dest)
		} else {
			fmt.Println(l.empty)
		}
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(l.columns, "\t"))
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// outboxListing is `otpd outbox`.
var outboxListing = listing{
	name: "outbox",
	help: "otpd outbox [--destination E164] [--json] [--limit N]\n\n" +
		"Lists the messages the development outbox delivered, oldest first. They include the codes:\n" +
		"the outbox exists to show what would have been texted.",
	empty:    "The outbox is empty.",
	emptyFor: "The outbox holds no message to %s.",
	columns:  []string{"CREATED", "TO", "REFERENCE", "LANGUAGE", "BODY"},
	fetch: func(ctx context.Context, st storage.Store, dest string, limit int) (any, [][]string, error) {
		msgs, err := st.ListOutbox(ctx, storage.OutboxQuery{Destination: dest, Limit: limit})
		entries := pinpointapi.OutboxEntries(msgs)
		rows := make([][]string, len(entries))
		for i, e := range entries {
			rows[i] = []string{e.CreatedAt, e.DestinationIdentity, e.ReferenceID, e.Language, strings.ReplaceAll(e.Body, "\n", " ")}
		}
		return entries, rows, err
	},
}

// messagesListing is `otpd messages`.
var messagesListing = listing{
	name: "messages",
	help: "otpd messages [--destination E164] [--json] [--limit N]\n\n" +
		"Lists the messages sent, oldest first, with their carrier and delivery status (never their text).",
	empty:    "No message has been sent.",
	emptyFor: "No message has been sent to %s.",
	columns:  []string{"CREATED", "TO", "REFERENCE", "CARRIER", "STATUS", "STATUS CODE", "UPDATED"},
	fetch: func(ctx context.Context, st storage.Store, dest string, limit int) (any, [][]string, error) {
		recs, err := st.ListMessages(ctx, storage.MessageQuery{Destination: dest, Limit: limit})
		entries := pinpointapi.MessageEntries(recs)
		rows := make([][]string, len(entries))
		for i, e := range entries {
			rows[i] = []string{e.CreatedAt, e.DestinationIdentity, e.ReferenceID, e.Carrier, e.Status, e.StatusCode, e.UpdatedAt}
		}
		return entries, rows, err
	},
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

const adoptHMACKeyHelp = `otpd adopt-hmac-key [--data-dir DIR | --store URL]

Makes the store take the code hashing key this command is given (OTPD_HMAC_KEY,
OTPD_HMAC_KEY_FILE, or the data directory's hmac.key, made if there is none), so
that otpd serve starts with it. A server refuses to start with a key other than the
one the store's codes are hashed with; run this once, with every server stopped, to
replace the key on purpose. Every live code then stops verifying: their users ask
for a new one.`

// runAdoptHMACKey makes the store take the given code hashing key in place
// of the one it held.
func runAdoptHMACKey(args []string) error {
	var cfg config
	fs := newFlagSet("adopt-hmac-key", adoptHMACKeyHelp)
	storeFlags(fs, &cfg)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkHMACKeyEnv(); err != nil {
		return err
	}
	if cfg.Store != "" && os.Getenv("OTPD_HMAC_KEY") == "" && os.Getenv("OTPD_HMAC_KEY_FILE") == "" {
		return errors.New("adopt-hmac-key: a shared store takes the key from OTPD_HMAC_KEY or OTPD_HMAC_KEY_FILE; neither is set")
	}
	return withStore(cfg, false, func(ctx context.Context, st storage.Store) error {
		key, source, generated, err := loadHMACKey(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("adopt-hmac-key: %w", err)
		}
		if generated {
			fmt.Fprintf(os.Stderr, "otpd: generated a new code hashing key in %s\n", source)
		}
		found, _, err := adoptKey(ctx, st, otp.KeyCheck(key), true)
		if err != nil {
			return err
		}
		switch found {
		case keyMatched:
			fmt.Fprintf(os.Stderr, "otpd: the store already takes the code hashing key from %s; nothing changed\n", source)
		case keyRecorded:
			fmt.Fprintf(os.Stderr, "otpd: the store, which held no key check, now takes the code hashing key from %s\n", source)
		case keyReplaced:
			fmt.Fprintf(os.Stderr, "otpd: the store now takes the code hashing key from %s; codes hashed with the previous key no longer verify. "+
				"A server still running keeps the previous key and reports itself not ready: restart every server with the new one\n", source)
		}
		return nil
	})
}

const generateAccessKeyHelp = `otpd generate-access-key [--profile NAME]

Prints a new access key pair, from crypto/rand, as a profile of an AWS
shared-credentials file, to append to the file that OTPD_ACCESS_KEYS_FILE names
(or the data directory's credentials file):

  otpd generate-access-key >> /etc/otpd/access-keys

otpd reads that file again while it runs and takes a change within about 10
seconds, so a key is rotated without a restart: add the new profile, move clients
to it, then remove the old profile once no client uses it
(otpd_access_key_requests_total shows which keys sign).`

// runGenerateAccessKey is otpd generate-access-key: it prints a new pair to
// w, for the operator to add to a file of pairs.
func runGenerateAccessKey(args []string, w io.Writer, now time.Time) error {
	fs := newFlagSet("generate-access-key", generateAccessKeyHelp)
	profile := fs.String("profile", "", `the profile's name (default "otpd-" and the date and the key ID's last characters, as in otpd-20261207-7QKA)`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *profile != "" {
		if err := accesskeys.CheckProfile(*profile); err != nil {
			return fmt.Errorf("--profile: %w", err)
		}
	}
	pair, err := accesskeys.Generate(*profile)
	if err != nil {
		return err
	}
	if pair.Profile == "" {
		pair.Profile = "otpd-" + now.UTC().Format("20060102") + "-" + pair.AccessKeyID[len(pair.AccessKeyID)-4:]
	}
	_, err = w.Write(pair.AppendProfile(nil))
	return err
}
