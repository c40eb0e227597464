package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/otpd/otpd/internal/loadgen"
	"github.com/otpd/otpd/internal/storage/sqlite"
)

const flushTestHelp = `otpd flush-test [flags]

Measures how long the disk under --data-dir takes to flush a write, as the
embedded store's writer flushes its log: it overwrites --size bytes of a
temporary file of about 16 MiB and flushes them (fdatasync on Linux), again
and again for --duration, then prints how long the flushes took (mean,
percentiles and maximum) and removes the file. Every send and verification
on the embedded store waits for such a flush (of its group's pages), so
their tail is a floor under the tail of sends and verifications.
PostgreSQL's pg_test_fsync measures its log's flushes in much the same way.

It writes all the time: some 1 GB in 5 s at 40 KiB on a disk that flushes
in 0.2 ms. Run it before the server starts, or on an idle machine: beside a
running server, each slows the other. A directory on tmpfs measures memory,
not a disk.

--busy N keeps N cores busy meanwhile, each with a goroutine that spins, as
requests would: on a virtual machine, a flush can take much longer when
the cores are busy than when they idle, even with the disk to itself.
`

// Bounds of flush-test's flags: --size from a page to more than any group
// writes; --duration short enough to keep every flush's time in memory.
const (
	minFlushTestSize     = 4 << 10
	maxFlushTestSize     = 16 << 20
	maxFlushTestDuration = 10 * time.Minute
)

func runFlushTest(args []string, out io.Writer) error {
	fs := newFlagSet("flush-test", flushTestHelp)
	dir := fs.String("data-dir", env("OTPD_DATA_DIR", "./otpd-data"), "the directory whose disk to test, as otpd serve's (OTPD_DATA_DIR)")
	size := fs.Int("size", 40<<10, fmt.Sprintf("bytes written before each flush (%d to %d; a verification group's log is some 40 KiB, a send group's some 300 KiB)", minFlushTestSize, maxFlushTestSize))
	duration := fs.Duration("duration", 5*time.Second, "how long to flush for")
	busy := fs.Int("busy", 0, "cores to keep busy meanwhile (0 to the number of CPUs)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var errs []error
	if *size < minFlushTestSize || *size > maxFlushTestSize {
		errs = append(errs, fmt.Errorf("--size %d: must be %d to %d bytes", *size, minFlushTestSize, maxFlushTestSize))
	}
	if *duration <= 0 || *duration > maxFlushTestDuration {
		errs = append(errs, fmt.Errorf("--duration %s: must be positive and at most %s", *duration, maxFlushTestDuration))
	}
	if *busy < 0 || *busy > runtime.NumCPU() {
		errs = append(errs, fmt.Errorf("--busy %d: must be 0 to %d, the number of CPUs", *busy, runtime.NumCPU()))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if st, err := os.Stat(*dir); err != nil {
		return fmt.Errorf("--data-dir: %w (create it, or run otpd serve once)", err)
	} else if !st.IsDir() {
		return fmt.Errorf("--data-dir %s: not a directory", *dir)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopBusy := spin(*busy)
	flushes, err := sqlite.MeasureFlushes(ctx, *dir, *size, *duration)
	stopBusy()
	if errors.Is(err, context.Canceled) {
		return errors.New("flush-test: interrupted (the file is removed)")
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(out, describeFlushes(flushes, *size, *busy))
	return nil
}

// spin keeps n cores busy, each with a goroutine that spins on a scheduler
// processor added for it, so that the flushes keep one of their own, until
// the returned function is called.
func spin(n int) (stop func()) {
	if n == 0 {
		return func() {}
	}
	prev := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(prev + n)
	var (
		done atomic.Bool
		wg   sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			for !done.Load() {
			}
		})
	}
	return func() {
		done.Store(true)
		wg.Wait()
		runtime.GOMAXPROCS(prev)
	}
}

// describeFlushes is flush-test's report. It sorts flushes.
func describeFlushes(flushes []time.Duration, size, busy int) string {
	if len(flushes) == 0 {
		return "flush-test: no flush finished"
	}
	var total time.Duration
	for _, d := range flushes {
		total += d
	}
	p := loadgen.ComputePercentiles(flushes) // by the nearest rank, as the bench's latencies
	cores := "the cores otherwise idle"
	if busy > 0 {
		cores = fmt.Sprintf("%d of %d cores kept busy", busy, runtime.NumCPU())
	}
	return fmt.Sprintf("flush-test: %s written, then flushed, %d times (%s): mean %.3f ms, p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms",
		byteSize(int64(size)), len(flushes), cores, ms(total/time.Duration(len(flushes))),
		ms(p.P50), ms(p.P90), ms(p.P99), ms(p.P999), ms(p.Max))
}
