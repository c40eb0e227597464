package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/otpd/otpd/internal/storage"
)

// outboxMessage returns message number n of appID to destination, created at.
func outboxMessage(appID, destination string, n int, at time.Time) storage.OutboxMessage {
	return storage.OutboxMessage{
		MessageID:           fmt.Sprintf("message-%d", n),
		AppID:               appID,
		OriginationIdentity: "OTPD",
		DestinationIdentity: destination,
		ReferenceID:         fmt.Sprintf("login-%d", n),
		Language:            "pt-BR",
		Body:                fmt.Sprintf("Sua senha de uso único é %06d, da OTPD ✓", n),
		Encoding:            "UCS-2",
		Segments:            1 + n%3,
		CreatedAt:           at,
	}
}

// appendOutbox stores the messages in the order given.
func appendOutbox(t *testing.T, s storage.Store, msgs ...storage.OutboxMessage) {
	t.Helper()
	for _, m := range msgs {
		if err := s.AppendOutbox(t.Context(), m); err != nil {
			t.Fatalf("AppendOutbox(%s): %v", m.MessageID, err)
		}
	}
}

// listOutbox runs ListOutbox.
func listOutbox(t *testing.T, s storage.Store, q storage.OutboxQuery) []storage.OutboxMessage {
	t.Helper()
	got, err := s.ListOutbox(t.Context(), q)
	if err != nil {
		t.Fatalf("ListOutbox(%+v): %v", q, err)
	}
	return got
}

// expectMessages checks that got is want, field by field, times as UTC
// instants.
func expectMessages(t *testing.T, what string, got []storage.OutboxMessage, want ...storage.OutboxMessage) {
	t.Helper()
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		g, w := got[i], want[i]
		same = g.CreatedAt.Equal(w.CreatedAt) && g.CreatedAt.Location() == time.UTC
		g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
		same = same && g == w
	}
	if !same {
		t.Errorf("%s:\ngot  %s\nwant %s", what, describeMessages(got), describeMessages(want))
	}
}

func describeMessages(msgs []storage.OutboxMessage) string {
	s := fmt.Sprintf("%d messages", len(msgs))
	for _, m := range msgs {
		s += fmt.Sprintf("\n\t%+v", m)
	}
	return s
}

var outboxTests = []test{
	{"EmptyOutboxListsNothing", func(t *testing.T, s storage.Store) {
		expectMessages(t, "ListOutbox", listOutbox(t, s, storage.OutboxQuery{}))
	}},
	{"ListsOldestFirst", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		m1 := outboxMessage(app.ID, dest1, 1, base)
		m2 := outboxMessage(app.ID, dest2, 2, base.Add(time.Second))
		m3 := outboxMessage(app.ID, dest1, 3, base.Add(2*time.Second))
		appendOutbox(t, s, m2, m1, m3)
		expectMessages(t, "ListOutbox", listOutbox(t, s, storage.OutboxQuery{}), m1, m2, m3)
	}},
	{"TimesComeBackInUTC", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		m := outboxMessage(app.ID, dest1, 1, base.In(time.FixedZone("UTC-03:00", -3*3600)))
		appendOutbox(t, s, m)
		expectMessages(t, "ListOutbox", listOutbox(t, s, storage.OutboxQuery{}), m)
	}},
	{"FiltersByDestination", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		m1 := outboxMessage(app.ID, dest1, 1, base)
		m2 := outboxMessage(app.ID, dest2, 2, base.Add(time.Second))
		m3 := outboxMessage(app.ID, dest1, 3, base.Add(2*time.Second))
		appendOutbox(t, s, m1, m2, m3)
		expectMessages(t, "ListOutbox(destination 1)", listOutbox(t, s, storage.OutboxQuery{Destination: dest1}), m1, m3)
		expectMessages(t, "ListOutbox(destination 2)", listOutbox(t, s, storage.OutboxQuery{Destination: dest2}), m2)
		expectMessages(t, "ListOutbox(another destination)", listOutbox(t, s, storage.OutboxQuery{Destination: "+15559999999"}))
	}},
	{"LimitKeepsTheNewest", func(t *testing.T, s storage.Store) {
		app := createApp(t, s, 1)
		var msgs []storage.OutboxMessage
		for i := range 5 {
			dest := dest1
			if i%2 == 1 {
				dest = dest2
			}
			msgs = append(msgs, outboxMessage(app.ID, dest, i, base.Add(time.Duration(i)*time.Second)))
		}
		appendOutbox(t, s, msgs...)
		expectMessages(t, "ListOutbox(limit 2)", listOutbox(t, s, storage.OutboxQuery{Limit: 2}), msgs[3], msgs[4])
		expectMessages(t, "ListOutbox(destination 1, limit 2)", listOutbox(t, s, storage.OutboxQuery{Destination: dest1, Limit: 2}), msgs[2], msgs[4])
		expectMessages(t, "ListOutbox(limit 10)", listOutbox(t, s, storage.OutboxQuery{Limit: 10}), msgs...)
	}},
}
