package cpuload

import (
	"math"
	"runtime/metrics"
	"slices"
	"time"
)

// Sched is a snapshot of how long goroutines waited runnable before they
// ran (the runtime's /sched/latencies:seconds histogram, which tracks a
// sample of goroutines). With the CPU busy, most of a real-time program's
// latency is this queueing.
type Sched struct {
	counts  []uint64
	buckets []float64
}

// SchedNow takes a snapshot.
func SchedNow() Sched {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return Sched{}
	}
	h := s[0].Value.Float64Histogram()
	return Sched{counts: slices.Clone(h.Counts), buckets: h.Buckets}
}

// Since returns the waits recorded between from and s.
func (s Sched) Since(from Sched) Sched {
	d := Sched{counts: slices.Clone(s.counts), buckets: s.buckets}
	for i := range d.counts {
		if i < len(from.counts) {
			d.counts[i] -= from.counts[i]
		}
	}
	return d
}

// Quantile returns the upper bound of the histogram bucket that holds
// quantile q of the waits (0 if none were recorded).
func (s Sched) Quantile(q float64) time.Duration {
	var total uint64
	for _, c := range s.counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	want := uint64(q * float64(total))
	var n uint64
	for i, c := range s.counts {
		n += c
		if n > want {
			upper := s.buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = s.buckets[i]
			}
			return time.Duration(upper * float64(time.Second)).Round(time.Microsecond)
		}
	}
	return 0
}
