package sms

import (
	"context"
	"net/http/httptrace"
	"sync/atomic"
)

// WithWriteTrace returns ctx carrying an HTTP client trace that records
// whether a request made with it was written in full, and a function that
// reports it. An HTTP carrier whose request then fails without an answer
// (the connection broke) cannot know whether its service took the message
// when it was written: the failure is MayDeliver.
func WithWriteTrace(ctx context.Context) (context.Context, func() bool) {
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			wrote.Store(true)
		}
	}}
	return httptrace.WithClientTrace(ctx, trace), wrote.Load
}
