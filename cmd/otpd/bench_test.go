package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint"
	"github.com/aws/aws-sdk-go-v2/service/pinpoint/types"
)

// BenchmarkHTTP measures whole requests through the real server over
// loopback HTTP, signed and decoded by aws-sdk-go-v2, with the embedded
// store committing durably. Client and server share the machine, so the
// figures are a floor, not a ceiling. Run:
//
//	go test -run=^$ -bench=HTTP -benchtime=5s ./cmd/otpd/
func BenchmarkHTTP(b *testing.B) {
	b.Setenv("OTPD_ACCESS_KEY_ID", testAccessKeyID)
	b.Setenv("OTPD_SECRET_ACCESS_KEY", testSecretKey)
	cfg := testConfig(b.TempDir())
	cfg.FailureLimit = 1 << 30
	cfg.LogLevel = "error"
	ctx, cancel := context.WithCancel(context.Background())
	s, err := newServer(ctx, cfg, cfg.logger(), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, ln) }()
	b.Cleanup(func() { cancel(); <-done })

	client := pinpoint.New(pinpoint.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String("http://" + ln.Addr().String()),
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKeyID, testSecretKey, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}},
	})
	app, err := client.CreateApp(ctx, &pinpoint.CreateAppInput{CreateApplicationRequest: &types.CreateApplicationRequest{Name: aws.String("bench")}})
	if err != nil {
		b.Fatal(err)
	}
	appID := app.ApplicationResponse.Id
	var seq atomic.Int64

	b.Run("SendOTPMessage", func(b *testing.B) {
		b.SetParallelism(16) // 32 concurrent clients on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := seq.Add(1)
				_, err := client.SendOTPMessage(ctx, &pinpoint.SendOTPMessageInput{ApplicationId: appID,
					SendOTPMessageRequestParameters: &types.SendOTPMessageRequestParameters{
						Channel: aws.String("SMS"), BrandName: aws.String("Bench"), OriginationIdentity: aws.String(testOrigination),
						DestinationIdentity: aws.String(testDestination), ReferenceId: aws.String(fmt.Sprint("send-", n)),
					}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
	b.Run("VerifyOTPMessage", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := seq.Add(1)
				_, err := client.VerifyOTPMessage(ctx, &pinpoint.VerifyOTPMessageInput{ApplicationId: appID,
					VerifyOTPMessageRequestParameters: &types.VerifyOTPMessageRequestParameters{
						DestinationIdentity: aws.String(testDestination), ReferenceId: aws.String(fmt.Sprint("send-", n%1000)),
						Otp: aws.String("123456"),
					}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
}
