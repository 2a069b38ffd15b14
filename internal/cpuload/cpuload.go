// Package cpuload samples how much CPU this process and the whole machine
// have used, so a benchmark can report its own cost and flag runs that
// other processes spoiled. It reads Linux's /proc; elsewhere it reports
// zeros.
package cpuload

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// tick is USER_HZ, the unit of /proc's CPU counters (100 on Linux).
const tick = 10 * time.Millisecond

// Sample is the CPU time used so far by every process (Machine) and by
// this one (Self).
type Sample struct {
	Machine, Self time.Duration
}

// Now takes a sample.
func Now() Sample {
	var s Sample
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		for i := 1; i < len(f) && i <= 8; i++ {
			if i == 4 || i == 5 {
				continue // idle, iowait
			}
			n, _ := strconv.ParseInt(f[i], 10, 64)
			s.Machine += time.Duration(n) * tick
		}
	}
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		// Fields after the command name (which may hold spaces): utime and
		// stime are the 12th and 13th.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 12 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				s.Self = time.Duration(u+st) * tick
			}
		}
	}
	return s
}

// Cores returns, between from and s over wall time, the cores this
// process used and the cores other processes used.
func (s Sample) Cores(from Sample, wall time.Duration) (self, others float64) {
	self = (s.Self - from.Self).Seconds() / wall.Seconds()
	others = max(0, (s.Machine-from.Machine-(s.Self-from.Self)).Seconds()/wall.Seconds())
	return self, others
}
