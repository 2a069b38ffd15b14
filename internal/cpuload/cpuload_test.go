package cpuload

import (
	"runtime"
	"testing"
	"time"
)

// TestSpinShowsAsSelf: a goroutine spinning for 300 ms shows up as this
// process's CPU, and the machine's busy time covers it.
func TestSpinShowsAsSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	s0 := Now()
	start := time.Now()
	for time.Since(start) < 300*time.Millisecond {
	}
	s1 := Now()
	self, others := s1.Cores(s0, time.Since(start))
	if self < 0.5 {
		t.Errorf("spinning used %.2f cores by /proc, want about 1", self)
	}
	if others < 0 {
		t.Errorf("others %.2f < 0", others)
	}
	if d := s1.Machine - s0.Machine; d < s1.Self-s0.Self-2*tick {
		t.Errorf("machine busy %v below this process's %v", d, s1.Self-s0.Self)
	}
}

// TestStealIsNotBusy: /proc/stat's steal column (time the hypervisor
// withheld) is counted apart from the busy time of processes, and idle and
// iowait in neither.
func TestStealIsNotBusy(t *testing.T) {
	busy, steal := machineTimes("cpu  100 2 30 5000 7 1 4 250 0 0\ncpu0 50 1 15 2500 3 0 2 125 0 0\n")
	if want := 137 * tick; busy != want {
		t.Errorf("busy %v, want %v (user+nice+system+irq+softirq)", busy, want)
	}
	if want := 250 * tick; steal != want {
		t.Errorf("steal %v, want %v", steal, want)
	}
	s0, s1 := Sample{Steal: time.Second}, Sample{Steal: 2 * time.Second}
	if got := s1.StealCores(s0, 2*time.Second); got != 0.5 {
		t.Errorf("1 s stolen in 2 s: %.2f cores, want 0.5", got)
	}
}

// TestSchedShowsQueueing: with one P, goroutines that wake while another
// spins for 20 ms at a time wait for it, and the snapshot's p99 shows
// waits of that order.
func TestSchedShowsQueueing(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s0 := SchedNow()
	stop := make(chan struct{})
	spun := make(chan struct{})
	go func() {
		defer close(spun)
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			for time.Since(start) < 20*time.Millisecond {
			}
			runtime.Gosched()
		}
	}()
	done := make(chan struct{})
	for range 64 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 10 {
				time.Sleep(time.Millisecond)
			}
		}()
	}
	for range 64 {
		<-done
	}
	close(stop)
	<-spun
	d := SchedNow().Since(s0)
	if q := d.Quantile(0.99); q < 5*time.Millisecond {
		t.Errorf("p99 wait %v behind a goroutine spinning 20 ms at a time, want ≥ 5 ms", q)
	}
	if q := d.Quantile(0.99); q > time.Second {
		t.Errorf("p99 wait %v, want well under a second", q)
	}
	if (Sched{}).Quantile(0.5) != 0 {
		t.Error("an empty snapshot has no quantile")
	}
}
