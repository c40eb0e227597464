package sms

import (
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// failingConn is a connection whose every write fails, as one the peer
// reset does; reads wait for it to close.
type failingConn struct{ closed chan struct{} }

func (c failingConn) Read([]byte) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}
func (failingConn) Write([]byte) (int, error) {
	return 0, &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
}
func (c failingConn) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return nil
}
func (failingConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (failingConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (failingConn) SetDeadline(time.Time) error      { return nil }
func (failingConn) SetReadDeadline(time.Time) error  { return nil }
func (failingConn) SetWriteDeadline(time.Time) error { return nil }

// A request whose writes failed was not sent, although net/http reports
// it written once it is in the connection's buffer.
func TestWithWriteTraceAfterAFailedWrite(t *testing.T) {
	client := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return failingConn{closed: make(chan struct{})}, nil
	}}}
	ctx, wrote := WithWriteTrace(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://otpd.test/send", strings.NewReader(`{"To":"+14255550142"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Do(req)
	if err == nil {
		t.Fatal("a request over a connection whose writes fail succeeded")
	}
	if wrote(err) {
		t.Errorf("wrote(%v) = true, want false: nothing went out", err)
	}
}
