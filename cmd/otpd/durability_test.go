package main

// A durability test: what otpd acknowledged before it was killed with
// SIGKILL (no shutdown, no flush) must hold after it restarts on the same
// data directory.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint/types"
)

// otpdProcess is `otpd serve` running as a child process.
type otpdProcess struct {
	cmd    *exec.Cmd
	output *lockedBuffer
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

// signal sends sig to the process and waits, at most 15 s, for it to exit.
func (p *otpdProcess) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("otpd serve did not exit within 15s of %v", sig)
	}
}

// startOtpdProcess runs `otpd serve` on addr and dataDir with the test key
// pair (and extraEnv, e.g. OTPD_STORE) and waits until GET /healthz answers 200. The process is killed when
// the test ends, whatever happens.
func startOtpdProcess(t *testing.T, addr, dataDir string, extraEnv ...string) *otpdProcess {
	t.Helper()
	bin := buildOtpd(t)
	cmd := exec.Command(bin, "serve", "--addr", addr, "--data-dir", dataDir)
	cmd.Env = append(environWithout("OTPD_"),
		"OTPD_ACCESS_KEY_ID="+testAccessKeyID,
		"OTPD_SECRET_ACCESS_KEY="+testSecretKey,
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	p := &otpdProcess{cmd: cmd, output: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start otpd serve: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of otpd serve --addr %s (pid %d), last 8 KiB:\n%s", addr, cmd.Process.Pid, p.output.tail(8<<10))
		}
	})

	url := "http://" + addr
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("otpd serve exited before it was healthy: %v\n%s", p.err, p.output.tail(8<<10))
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("otpd serve did not answer GET %s/healthz with 200 within 30s (last: %v)", url, describe(resp, err))
		}
	}
}

func describe(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// kill sends SIGKILL and waits for the process to end. It may be called
// more than once.
func (p *otpdProcess) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.exited
}

// lockedBuffer collects a child's output from two pipes at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.Bytes()
	if len(s) > n {
		s = s[len(s)-n:]
		if i := bytes.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:] // whole lines only
		}
	}
	return string(s)
}

// freeLoopbackAddr returns a loopback address with a port that was free a
// moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// sentCode is a send that otpd acknowledged: 200 with SUCCESSFUL.
type sentCode struct {
	Destination, ReferenceID, MessageID string
}

// sendCode sends a 6-digit code and returns it as acknowledged, or an error
// if otpd did not answer 200 SUCCESSFUL.
func sendCode(client *pinpoint.Client, appID, dest, ref string, allowedAttempts int32) (sentCode, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := client.SendOTPMessage(ctx, &pinpoint.SendOTPMessageInput{
		ApplicationId: aws.String(appID),
		SendOTPMessageRequestParameters: &types.SendOTPMessageRequestParameters{
			Channel:             aws.String("SMS"),
			BrandName:           aws.String("ExampleCorp"),
			CodeLength:          aws.Int32(6),
			AllowedAttempts:     aws.Int32(allowedAttempts),
			OriginationIdentity: aws.String(docOrigination),
			DestinationIdentity: aws.String(dest),
			ReferenceId:         aws.String(ref),
		},
	})
	if err != nil {
		return sentCode{}, fmt.Errorf("send %s/%s: %w", dest, ref, err)
	}
	if out.MessageResponse == nil {
		return sentCode{}, fmt.Errorf("send %s/%s: no MessageResponse", dest, ref)
	}
	r, ok := out.MessageResponse.Result[dest]
	if !ok || r.DeliveryStatus != types.DeliveryStatusSuccessful || aws.ToInt32(r.StatusCode) != 200 || aws.ToString(r.MessageId) == "" {
		return sentCode{}, fmt.Errorf("send %s/%s: Result %+v, want %s SUCCESSFUL 200 with a MessageId", dest, ref, out.MessageResponse.Result, dest)
	}
	return sentCode{Destination: dest, ReferenceID: ref, MessageID: aws.ToString(r.MessageId)}, nil
}

func TestDurabilityAfterKill(t *testing.T) {
	buildOtpd(t)
	dataDir := t.TempDir()
	addr := freeLoopbackAddr(t)
	url := "http://" + addr

	first := startOtpdProcess(t, addr, dataDir)
	client := pinpointClientFor(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	created, err := client.CreateApp(ctx, &pinpoint.CreateAppInput{
		CreateApplicationRequest: &types.CreateApplicationRequest{Name: aws.String("durability")},
	})
	cancel()
	if err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	appID := aws.ToString(created.ApplicationResponse.Id)

	// Codes whose state changes before the kill, read from the outbox
	// while the server runs: one with one wrong guess (of one allowed),
	// one with none (the control), one consumed.
	const guessDest = "+14255550160"
	var special struct{ guessed, control, consumed sentCode }
	for _, s := range []struct {
		c   *sentCode
		ref string
	}{{&special.guessed, "attempts-guessed"}, {&special.control, "attempts-control"}, {&special.consumed, "consumed"}} {
		if *s.c, err = sendCode(client, appID, guessDest, s.ref, 1); err != nil {
			t.Fatal(err)
		}
	}
	entries := readOutbox(t, dataDir)
	codeOf := func(c sentCode) string {
		t.Helper()
		e := outboxEntry(t, entries, c.MessageID)
		if e.DestinationIdentity != c.Destination {
			t.Fatalf("outbox message %s went to %s, want %s", c.MessageID, e.DestinationIdentity, c.Destination)
		}
		code, err := codeIn(e.Body, 6)
		if err != nil {
			t.Fatalf("outbox message %s: %v", c.MessageID, err)
		}
		return code
	}
	guessedCode, controlCode, consumedCode := codeOf(special.guessed), codeOf(special.control), codeOf(special.consumed)
	if verify(t, client, appID, special.guessed.Destination, special.guessed.ReferenceID, wrongCode(guessedCode)) {
		t.Fatalf("a wrong guess (%s for the code %s) was valid", wrongCode(guessedCode), guessedCode)
	}
	if !verify(t, client, appID, special.consumed.Destination, special.consumed.ReferenceID, consumedCode) {
		t.Fatalf("the code %s was not valid right after it was sent", consumedCode)
	}

	// Load: 50 sends one after another, while 4 goroutines send as fast as
	// they can until the server is killed under them.
	var (
		mu     sync.Mutex
		acked  []sentCode
		killed atomic.Bool
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	ack := func(c sentCode) {
		mu.Lock()
		acked = append(acked, c)
		mu.Unlock()
	}
	for g := range 4 {
		wg.Go(func() {
			dest := "+1425555015" + strconv.Itoa(g)
			for i := 0; i < 200; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := sendCode(client, appID, dest, fmt.Sprintf("background-%d-%d", g, i), 3)
				if err != nil {
					if !killed.Load() {
						t.Errorf("before the kill: %v", err)
					}
					return
				}
				ack(c)
			}
		})
	}
	for i := range 50 {
		c, err := sendCode(client, appID, docDestination, fmt.Sprintf("sequential-%02d", i), 3)
		if err != nil {
			t.Errorf("before the kill: %v", err)
			continue
		}
		ack(c)
	}

	killed.Store(true)
	first.kill()
	close(stop)
	wg.Wait()
	t.Logf("acknowledged before SIGKILL: %d codes (50 sequential, %d concurrent)", len(acked), len(acked)-50)

	// The outbox, read with the server dead, holds every acknowledged code.
	entries = readOutbox(t, dataDir)
	codes := make(map[string]string, len(acked))
	for _, c := range acked {
		codes[c.MessageID] = codeOf(c)
	}

	second := startOtpdProcess(t, addr, dataDir)
	client = pinpointClientFor(t, url)
	lost := 0
	for _, c := range acked {
		if !verify(t, client, appID, c.Destination, c.ReferenceID, codes[c.MessageID]) {
			lost++
			t.Errorf("after kill -9 and restart: %s/%s (MessageId %s) with its code %s: Valid false, want true",
				c.Destination, c.ReferenceID, c.MessageID, codes[c.MessageID])
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged codes did not survive kill -9", lost, len(acked))
	}
	if verify(t, client, appID, special.guessed.Destination, special.guessed.ReferenceID, guessedCode) {
		t.Errorf("after kill -9 and restart: the right code of %s (AllowedAttempts 1, one wrong guess acknowledged before the kill): Valid true, want false",
			special.guessed.ReferenceID)
	}
	if !verify(t, client, appID, special.control.Destination, special.control.ReferenceID, controlCode) {
		t.Errorf("after kill -9 and restart: the right code of %s (AllowedAttempts 1, no guess): Valid false, want true",
			special.control.ReferenceID)
	}
	if verify(t, client, appID, special.consumed.Destination, special.consumed.ReferenceID, consumedCode) {
		t.Errorf("after kill -9 and restart: the code of %s, consumed before the kill: Valid true, want false",
			special.consumed.ReferenceID)
	}
	second.kill()
}
