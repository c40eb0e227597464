package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// The carriers the message tests name.
const (
	carrier1 = "twilio-us"
	carrier2 = "aws-eu"
)

// finalStatuses are the statuses that a pending report never replaces.
var finalStatuses = []string{storage.MessageDelivered, storage.MessageUndelivered, storage.MessageFailed}

// messageRecord returns record number n of appID to destination, handed to
// carrier1 at at, which named it "SM<n>".
func messageRecord(appID, destination string, n int, at time.Time) storage.MessageRecord {
	return storage.MessageRecord{
		MessageID:           fmt.Sprintf("msg-%04d", n),
		AppID:               appID,
		Carrier:             carrier1,
		CarrierMessageID:    fmt.Sprintf("SM%032x", n),
		OriginationIdentity: "OTPD",
		DestinationIdentity: destination,
		ReferenceID:         fmt.Sprintf("login-%d", n),
		Country:             "US",
		Status:              storage.MessageSubmitted,
		CreatedAt:           at,
		UpdatedAt:           at,
	}
}

// putMessages stores the records in the order given.
func putMessages(t *testing.T, s storage.Store, recs ...storage.MessageRecord) {
	t.Helper()
	for _, m := range recs {
		if err := putMessage(t, s, m); err != nil {
			t.Fatalf("RecordSend of message %s: %v", m.MessageID, err)
		}
	}
}

// putMessage stores m through RecordSend, with the code of its
// destination and ReferenceId (which no Purge of the tests deletes).
func putMessage(t *testing.T, s storage.Store, m storage.MessageRecord) error {
	app, err := s.GetApp(t.Context(), m.AppID)
	if err != nil {
		return fmt.Errorf("GetApp: %w", err)
	}
	c := longLivedCode(app, m.DestinationIdentity, m.ReferenceID)
	return s.RecordSend(t.Context(), storage.SendRecord{Code: &c, Message: &m})
}

// listMessages runs ListMessages.
func listMessages(t *testing.T, s storage.Store, q storage.MessageQuery) []storage.MessageRecord {
	t.Helper()
	got, err := s.ListMessages(t.Context(), q)
	if err != nil {
		t.Fatalf("ListMessages(%+v): %v", q, err)
	}
	return got
}

// report returns a delivery report of status with code at at.
func report(status, code string, at time.Time) storage.MessageStatusUpdate {
	return storage.MessageStatusUpdate{Status: status, StatusCode: code, At: at}
}

// updateMessage runs UpdateMessageStatus on m's carrier and carrier message
// ID, which must succeed.
func updateMessage(t *testing.T, s storage.Store, m storage.MessageRecord, u storage.MessageStatusUpdate) storage.MessageRecord {
	t.Helper()
	got, err := s.UpdateMessageStatus(t.Context(), m.Carrier, m.CarrierMessageID, u)
	if err != nil {
		t.Fatalf("UpdateMessageStatus(%s, %s, %+v): %v", m.Carrier, m.CarrierMessageID, u, err)
	}
	return got
}

// expectNoMessage checks that UpdateMessageStatus finds no record for
// (carrier, carrierMessageID).
func expectNoMessage(t *testing.T, s storage.Store, what, carrier, carrierMessageID string) {
	t.Helper()
	got, err := s.UpdateMessageStatus(t.Context(), carrier, carrierMessageID, report(storage.MessageDelivered, "000", base.Add(time.Hour)))
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: UpdateMessageStatus(%q, %q) = %+v, %v; want %v", what, carrier, carrierMessageID, got, err, storage.ErrNotFound)
	}
}

// applied returns m as a report u applied to it leaves it.
func applied(m storage.MessageRecord, u storage.MessageStatusUpdate) storage.MessageRecord {
	m.Status, m.StatusCode, m.UpdatedAt = u.Status, u.StatusCode, u.At
	return m
}

// sameRecord reports whether got is want, field by field, times as instants
// in UTC.
func sameRecord(got, want storage.MessageRecord) bool {
	if !got.CreatedAt.Equal(want.CreatedAt) || got.CreatedAt.Location() != time.UTC ||
		!got.UpdatedAt.Equal(want.UpdatedAt) || got.UpdatedAt.Location() != time.UTC {
		return false
	}
	got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return got == want
}

// expectRecord checks that got is want.
func expectRecord(t *testing.T, what string, got, want storage.MessageRecord) {
	t.Helper()
	if !sameRecord(got, want) {
		t.Errorf("%s:\ngot  %+v\nwant %+v (times in UTC)", what, got, want)
	}
}

// expectRecords checks that got is want, in that order.
func expectRecords(t *testing.T, what string, got []storage.MessageRecord, want ...storage.MessageRecord) {
	t.Helper()
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		same = sameRecord(got[i], want[i])
	}
	if !same {
		t.Errorf("%s:\ngot  %s\nwant %s", what, describeRecords(got), describeRecords(want))
	}
}

func describeRecords(recs []storage.MessageRecord) string {
	s := fmt.Sprintf("%d records", len(recs))
	for _, m := range recs {
		s += fmt.Sprintf("\n\t%+v", m)
	}
	return s
}

var messageTests = []test{
	{"NoRecordsListNothing", func(t *testing.T, s storage.Store) {
		expectRecords(t, "ListMessages", listMessages(t, s, storage.MessageQuery{}))
		expectNoMessage(t, s, "an empty store", carrier1, "SM1")
	}},
	{"PutAndListRoundTrip", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		zone := time.FixedZone("UTC-03:00", -3*3600)
		full := storage.MessageRecord{
			MessageID:           "0f8c2a4e-6b1d-4e55-9a7c-3d2b1e0f9a8b",
			AppID:               app.ID,
			Carrier:             "smpp: operadora {1}",
			CarrierMessageID:    "7f:{a}%b\t\"c\"",
			OriginationIdentity: "+5511999990000",
			DestinationIdentity: "+5511988887777",
			ReferenceID:         "login ✓ 42",
			Country:             "BR",
			Status:              storage.MessagePending,
			StatusCode:          "ENROUTE",
			CreatedAt:           base.In(zone),
			UpdatedAt:           base.Add(1500 * time.Millisecond).In(zone),
		}
		// What a carrier that gives no ID, with no country and no
		// reference, leaves: empty strings come back empty.
		bare := storage.MessageRecord{
			MessageID:           "bare:{1}",
			AppID:               app.ID,
			Carrier:             "webhook",
			DestinationIdentity: dest1,
			Status:              storage.MessageSubmitted,
			CreatedAt:           base.Add(time.Second),
			UpdatedAt:           base.Add(time.Second),
		}
		putMessages(t, s, full, bare)
		expectRecords(t, "ListMessages", listMessages(t, s, storage.MessageQuery{}), full, bare)
		u := report(storage.MessageDelivered, "DELIVRD", base.Add(2*time.Second).In(zone))
		expectRecord(t, "UpdateMessageStatus of the full record", updateMessage(t, s, full, u), applied(full, u))
	}},
	{"ListsOldestFirst", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		m1 := messageRecord(app.ID, dest1, 1, base)
		m2 := messageRecord(app.ID, dest2, 2, base.Add(time.Millisecond))
		m3 := messageRecord(app.ID, dest1, 3, base.Add(time.Hour))
		putMessages(t, s, m3, m1, m2)
		expectRecords(t, "ListMessages", listMessages(t, s, storage.MessageQuery{}), m1, m2, m3)
	}},
	{"FiltersByDestination", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		m1 := messageRecord(app.ID, dest1, 1, base)
		m2 := messageRecord(app.ID, dest2, 2, base.Add(time.Second))
		m3 := messageRecord(app.ID, dest1, 3, base.Add(2*time.Second))
		putMessages(t, s, m1, m2, m3)
		expectRecords(t, "ListMessages(destination 1)", listMessages(t, s, storage.MessageQuery{Destination: dest1}), m1, m3)
		expectRecords(t, "ListMessages(destination 2)", listMessages(t, s, storage.MessageQuery{Destination: dest2}), m2)
		expectRecords(t, "ListMessages(another destination)", listMessages(t, s, storage.MessageQuery{Destination: "+15559999999"}))
		expectRecords(t, "ListMessages(a prefix of destination 1)", listMessages(t, s, storage.MessageQuery{Destination: dest1[:len(dest1)-1]}))
	}},
	{"LimitKeepsTheNewest", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		var recs []storage.MessageRecord
		for i := range 5 {
			dest := dest1
			if i%2 == 1 {
				dest = dest2
			}
			recs = append(recs, messageRecord(app.ID, dest, i, base.Add(time.Duration(i)*time.Second)))
		}
		putMessages(t, s, recs[4], recs[0], recs[3], recs[1], recs[2])
		expectRecords(t, "ListMessages(limit 2)", listMessages(t, s, storage.MessageQuery{Limit: 2}), recs[3], recs[4])
		expectRecords(t, "ListMessages(destination 1, limit 2)", listMessages(t, s, storage.MessageQuery{Destination: dest1, Limit: 2}), recs[2], recs[4])
		expectRecords(t, "ListMessages(destination 2, limit 1)", listMessages(t, s, storage.MessageQuery{Destination: dest2, Limit: 1}), recs[3])
		expectRecords(t, "ListMessages(limit 10)", listMessages(t, s, storage.MessageQuery{Limit: 10}), recs...)
	}},
	{"PutReplacesTheSameMessageID", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		first := messageRecord(app.ID, dest1, 1, base)
		other := messageRecord(app.ID, dest1, 2, base.Add(time.Second))
		putMessages(t, s, first, other)
		again := first
		again.Status, again.StatusCode, again.UpdatedAt = storage.MessageFailed, "30007", base.Add(time.Minute)
		putMessages(t, s, again)
		expectRecords(t, "ListMessages after replacing the status", listMessages(t, s, storage.MessageQuery{}), again, other)

		// Everything changes: carrier, carrier message ID, destination,
		// creation time.
		moved := messageRecord(app.ID, dest2, 3, base.Add(2*time.Second))
		moved.MessageID, moved.Carrier = first.MessageID, carrier2
		putMessages(t, s, moved)
		expectRecords(t, "ListMessages after replacing everything", listMessages(t, s, storage.MessageQuery{}), other, moved)
		expectRecords(t, "ListMessages(the old destination)", listMessages(t, s, storage.MessageQuery{Destination: dest1}), other)
		expectRecords(t, "ListMessages(the new destination)", listMessages(t, s, storage.MessageQuery{Destination: dest2}), moved)
		expectNoMessage(t, s, "the replaced record's carrier message ID", first.Carrier, first.CarrierMessageID)
		u := report(storage.MessageDelivered, "", base.Add(time.Hour))
		expectRecord(t, "UpdateMessageStatus of the new carrier message ID", updateMessage(t, s, moved, u), applied(moved, u))
	}},
	{"UpdateAppliesTheReport", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		m := messageRecord(app.ID, dest1, 1, base)
		other := messageRecord(app.ID, dest1, 2, base.Add(time.Second))
		putMessages(t, s, m, other)
		pending := report(storage.MessagePending, "sent", base.Add(2*time.Second))
		expectRecord(t, "UpdateMessageStatus(pending)", updateMessage(t, s, m, pending), applied(m, pending))
		queued := report(storage.MessagePending, "queued", base.Add(time.Second)) // out of order, but not final
		expectRecord(t, "UpdateMessageStatus(pending again)", updateMessage(t, s, m, queued), applied(m, queued))
		delivered := report(storage.MessageDelivered, "DELIVRD", base.Add(3*time.Second))
		expectRecord(t, "UpdateMessageStatus(delivered)", updateMessage(t, s, m, delivered), applied(m, delivered))
		expectRecords(t, "ListMessages", listMessages(t, s, storage.MessageQuery{}), applied(m, delivered), other)
	}},
	{"UnknownCarrierMessageIsNotFound", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		m := messageRecord(app.ID, dest1, 1, base)
		putMessages(t, s, m)
		expectNoMessage(t, s, "another carrier message ID", m.Carrier, m.CarrierMessageID+"0")
		expectNoMessage(t, s, "the carrier message ID at another carrier", carrier2, m.CarrierMessageID)
		expectNoMessage(t, s, "the message ID as a carrier message ID", m.Carrier, m.MessageID)
		expectNoMessage(t, s, "an empty carrier message ID", m.Carrier, "")
		expectRecords(t, "ListMessages", listMessages(t, s, storage.MessageQuery{}), m)
	}},
	{"FinalStatusIsNotReplacedByPending", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		var want []storage.MessageRecord
		for i, final := range finalStatuses {
			m := messageRecord(app.ID, dest1, i, base.Add(time.Duration(i)*time.Second))
			putMessages(t, s, m)
			done := report(final, "final-"+final, base.Add(time.Minute))
			m = updateMessage(t, s, m, done)
			late := report(storage.MessagePending, "late", base.Add(2*time.Minute))
			expectRecord(t, "UpdateMessageStatus(pending) after "+final, updateMessage(t, s, m, late), m)
			want = append(want, m)
		}
		expectRecords(t, "ListMessages", listMessages(t, s, storage.MessageQuery{}), want...)
	}},
	{"FinalStatusReplacesPendingSubmittedAndFinal", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		n := 0
		for _, final := range finalStatuses {
			for _, before := range []string{storage.MessageSubmitted, storage.MessagePending, storage.MessageDelivered, storage.MessageFailed} {
				what := fmt.Sprintf("UpdateMessageStatus(%s) of a %s record", final, before)
				m := messageRecord(app.ID, dest1, n, base)
				m.Status, m.StatusCode = before, "before"
				n++
				putMessages(t, s, m)
				u := report(final, "after", base.Add(time.Minute))
				expectRecord(t, what, updateMessage(t, s, m, u), applied(m, u))
			}
		}
	}},
	{"CarriersAreDistinct", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		a := messageRecord(app.ID, dest1, 1, base)
		b := messageRecord(app.ID, dest2, 2, base.Add(time.Second))
		a.CarrierMessageID, b.CarrierMessageID, b.Carrier = "ID-1", "ID-1", carrier2
		putMessages(t, s, a, b)
		delivered := report(storage.MessageDelivered, "", base.Add(time.Minute))
		expectRecord(t, "UpdateMessageStatus at carrier 1", updateMessage(t, s, a, delivered), applied(a, delivered))
		expectRecords(t, "ListMessages after the report to carrier 1", listMessages(t, s, storage.MessageQuery{}), applied(a, delivered), b)
		failed := report(storage.MessageFailed, "", base.Add(2*time.Minute))
		expectRecord(t, "UpdateMessageStatus at carrier 2", updateMessage(t, s, b, failed), applied(b, failed))
		expectRecords(t, "ListMessages after the report to carrier 2", listMessages(t, s, storage.MessageQuery{}), applied(a, delivered), applied(b, failed))
	}},
	{"RecordsWithoutCarrierMessageIDs", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		a := messageRecord(app.ID, dest1, 1, base)
		b := messageRecord(app.ID, dest1, 2, base.Add(time.Second))
		a.CarrierMessageID, b.CarrierMessageID = "", ""
		putMessages(t, s, a, b)
		expectRecords(t, "ListMessages", listMessages(t, s, storage.MessageQuery{}), a, b)
		expectNoMessage(t, s, "an empty carrier message ID", a.Carrier, "")
	}},
	{"NewerRecordTakesOverACarrierMessageID", func(t *testing.T, s storage.Store) {
		// A carrier that names two messages alike (an SMSC whose counter
		// restarted): its reports are about the newer, and the older
		// record keeps everything but the carrier message ID.
		app := createApp(t, s, 1)
		older := messageRecord(app.ID, dest1, 1, base)
		newer := messageRecord(app.ID, dest2, 2, base.Add(time.Second))
		newer.CarrierMessageID = older.CarrierMessageID
		putMessages(t, s, older, newer)
		u := report(storage.MessageDelivered, "", base.Add(time.Minute))
		expectRecord(t, "UpdateMessageStatus of the shared carrier message ID", updateMessage(t, s, newer, u), applied(newer, u))
		released := older
		released.CarrierMessageID = ""
		expectRecords(t, "ListMessages", listMessages(t, s, storage.MessageQuery{}), released, applied(newer, u))
	}},
}

// messageVisibilityTests check that message records written through one
// handle are visible through the other.
var messageVisibilityTests = []sharedTest{
	{"MessagePutOnAIsListedAndUpdatedOnB", func(t *testing.T, a, b storage.Store) {
		m := messageRecord(createApp(t, a, 1).ID, dest1, 1, base)
		putMessages(t, a, m)
		expectRecords(t, "ListMessages on b", listMessages(t, b, storage.MessageQuery{Destination: dest1}), m)
		u := report(storage.MessageDelivered, "DELIVRD", base.Add(time.Minute))
		expectRecord(t, "UpdateMessageStatus on b", updateMessage(t, b, m, u), applied(m, u))
		expectRecords(t, "ListMessages on a", listMessages(t, a, storage.MessageQuery{}), applied(m, u))
	}},
}

// messageConcurrencyTests check that concurrent writes of message records
// stay consistent.
var messageConcurrencyTests = []sharedTest{
	{"FinalStatusSurvivesConcurrentReports", func(t *testing.T, a, b storage.Store) {
		app := createApp(t, a, 1)
		const records, reporters = 8, 32
		var recs []storage.MessageRecord
		for j := range records {
			recs = append(recs, messageRecord(app.ID, dest1, j, base.Add(time.Duration(j)*time.Millisecond)))
		}
		putMessages(t, a, recs...)
		// Goroutine i reports on every record, starting with record
		// i%8: pending reports, but the final one for record i%8 if i <
		// 8, which arrives among the pending reports of the others.
		race(reporters, func(i int) {
			for k := range records {
				j := (i + k) % records
				u := report(storage.MessagePending, fmt.Sprintf("pending-%d", i), base.Add(time.Second))
				if i == j {
					u = report(finalStatuses[j%len(finalStatuses)], fmt.Sprintf("final-%d", j), base.Add(time.Minute))
				}
				got, err := handle(i, a, b).UpdateMessageStatus(t.Context(), recs[j].Carrier, recs[j].CarrierMessageID, u)
				if err != nil {
					t.Errorf("UpdateMessageStatus(%s): %v", recs[j].MessageID, err)
				} else if got.MessageID != recs[j].MessageID {
					t.Errorf("UpdateMessageStatus(%s) returned record %s", recs[j].MessageID, got.MessageID)
				}
			}
		})
		var want []storage.MessageRecord
		for j, m := range recs {
			want = append(want, applied(m, report(finalStatuses[j%len(finalStatuses)], fmt.Sprintf("final-%d", j), base.Add(time.Minute))))
		}
		expectRecords(t, "ListMessages after the reports", listMessages(t, b, storage.MessageQuery{}), want...)
	}},
	{"PutsSharingACarrierMessageIDNeverFail", func(t *testing.T, a, b storage.Store) {
		app := createApp(t, a, 1)
		const puts = 16
		race(puts, func(i int) {
			m := messageRecord(app.ID, dest1, i, base.Add(time.Duration(i)*time.Millisecond))
			m.CarrierMessageID = "shared"
			if err := putMessage(t, handle(i, a, b), m); err != nil {
				t.Errorf("RecordSend of message %s: %v", m.MessageID, err)
			}
		})
		got := listMessages(t, a, storage.MessageQuery{})
		if len(got) != puts {
			t.Fatalf("ListMessages after %d puts: %s", puts, describeRecords(got))
		}
		var holders []storage.MessageRecord
		for _, m := range got {
			if m.CarrierMessageID != "" {
				holders = append(holders, m)
			}
		}
		if len(holders) != 1 || holders[0].CarrierMessageID != "shared" {
			t.Fatalf("records that hold the carrier message ID: %s; want one", describeRecords(holders))
		}
		u := report(storage.MessageDelivered, "", base.Add(time.Minute))
		expectRecord(t, "UpdateMessageStatus of the shared carrier message ID", updateMessage(t, b, holders[0], u), applied(holders[0], u))
	}},
	{"PutsAndReportsNeverFail", func(t *testing.T, a, b storage.Store) {
		// The same record put again and again (as a retry would) while
		// reports arrive: every report finds it.
		app := createApp(t, a, 1)
		m := messageRecord(app.ID, dest1, 1, base)
		putMessages(t, a, m)
		race(32, func(i int) {
			s := handle(i/2, a, b)
			for k := range 10 {
				if i%2 == 0 {
					if err := putMessage(t, s, m); err != nil {
						t.Errorf("RecordSend of the message: %v", err)
					}
					continue
				}
				u := report(storage.MessagePending, "", base.Add(time.Second))
				if k%3 == 2 {
					u = report(storage.MessageDelivered, fmt.Sprint(i), base.Add(time.Minute))
				}
				got, err := s.UpdateMessageStatus(t.Context(), m.Carrier, m.CarrierMessageID, u)
				switch {
				case err != nil:
					t.Errorf("UpdateMessageStatus of a record being put again: %v", err)
				case u.Status == storage.MessageDelivered && !sameRecord(got, applied(m, u)):
					t.Errorf("UpdateMessageStatus(delivered) = %+v, want %+v", got, applied(m, u))
				}
			}
		})
		u := report(storage.MessageUndelivered, "", base.Add(time.Hour))
		expectRecord(t, "UpdateMessageStatus after the race", updateMessage(t, b, m, u), applied(m, u))
		expectRecords(t, "ListMessages after the race", listMessages(t, a, storage.MessageQuery{}), applied(m, u))
	}},
}
