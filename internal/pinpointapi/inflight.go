package pinpointapi

import (
	"slices"
	"sync"
	"time"
)

// InFlight holds the requests the API is handling, so that a server that
// stops before they end can say which it abandoned (a send among them may
// have texted a code it could not store). Its zero value is ready to use.
type InFlight struct {
	mu   sync.Mutex
	reqs map[*state]struct{}
}

// Request is a request being handled, as a log line names it.
type Request struct {
	ID        string // the x-amzn-RequestId the client gets
	Operation string
	AppID     string // "" for operations on no application; bounded and escaped as the access log shows it
	Started   time.Time
}

func (f *InFlight) add(st *state) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reqs == nil {
		f.reqs = map[*state]struct{}{}
	}
	f.reqs[st] = struct{}{}
}

func (f *InFlight) remove(st *state) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.reqs, st)
}

// Requests returns the requests being handled, the oldest first.
func (f *InFlight) Requests() []Request {
	f.mu.Lock()
	reqs := make([]Request, 0, len(f.reqs))
	for st := range f.reqs {
		reqs = append(reqs, Request{ID: st.id, Operation: st.operation, AppID: loggable(st.appID, maxLoggedAppID), Started: st.start})
	}
	f.mu.Unlock()
	slices.SortFunc(reqs, func(a, b Request) int { return a.Started.Compare(b.Started) })
	return reqs
}
