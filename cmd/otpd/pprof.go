package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/otpd/otpd/internal/sms"
)

// startProfiles serves Go's runtime profiles (CPU, heap, allocations,
// blocking, mutexes, goroutines) on their own listener, apart from the API,
// so that they are reachable only where the operator chose (--pprof-addr),
// without authentication: an address beyond loopback is warned about. The
// command line is not served (pprof's /cmdline): --store may carry a
// password. Blocking and mutex contention are sampled until stop is called.
func startProfiles(addr string, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", func(w http.ResponseWriter, r *http.Request) {
		// The index page links to it: say why it is not there.
		http.Error(w, "otpd does not serve its command line: --store may carry a password", http.StatusNotFound)
	})
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No read or write timeout: a CPU profile or a trace takes as long as
	// it is asked to.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: serverLog(log)}
	stopServing, bound, err := listenAside(addr, srv, log, "the profile server")
	if err != nil {
		return nil, err
	}
	runtime.SetBlockProfileRate(10000) // one event per 10 µs of blocking
	runtime.SetMutexProfileFraction(100)
	log.Info("serving Go profiles", "addr", bound, "path", "/debug/pprof/")
	if host, _, _ := net.SplitHostPort(addr); !sms.IsLoopbackHost(host) {
		log.Warn("the profile server listens beyond loopback, without authentication: whoever reaches it can read otpd's memory and stack traces; bind --pprof-addr to 127.0.0.1 and reach it through SSH or kubectl port-forward",
			"addr", bound)
	}
	return func() {
		stopServing()
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}, nil
}
