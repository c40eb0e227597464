package sms

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptrace"
	"sync/atomic"
)

// WithWriteTrace returns ctx carrying an HTTP client trace of whether a
// request made with it was written, and a function that tells, given the
// request's final error, whether the service may have taken the message
// all the same: an HTTP carrier whose request fails without an answer (the
// connection broke) cannot know whether its service took it once it was
// written.
//
// net/http reports a request written once it is in the connection's
// buffer, before the buffer goes out, so only a connection that then ended
// while the answer was awaited (closed by the peer, or failing a read)
// counts; a failed write means nothing went out. (A reset that both sides
// of the connection see may still be read first: then a message that did
// not go out counts as one that may have.) Each new connection starts the record
// afresh: a request the transport retried on another connection was not
// written on the first, or the transport would not have retried it
// (except a replayable one; its first attempt's fate is then unknown
// either way).
func WithWriteTrace(ctx context.Context) (context.Context, func(err error) bool) {
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { wrote.Store(false) },
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	}
	return httptrace.WithClientTrace(ctx, trace), func(err error) bool {
		// Only a connection that ended while the answer was awaited
		// (closed, or failing a read) leaves the message's fate open.
		var op *net.OpError
		awaited := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &op) && op.Op == "read"
		return awaited && wrote.Load()
	}
}
