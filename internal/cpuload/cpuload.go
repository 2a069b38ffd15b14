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
// this one (Self), and the time the machine's virtual CPUs were ready to
// run but the hypervisor ran something else (Steal: /proc/stat's steal,
// zero on bare metal). Steal is not in Machine: it is time nothing here
// ran, and a run with much of it was starved by the host, not by other
// processes.
type Sample struct {
	Machine, Self, Steal time.Duration
}

// Now takes a sample.
func Now() Sample {
	var s Sample
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		s.Machine, s.Steal = machineTimes(string(b))
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

// machineTimes reads /proc/stat's first line (cpu user nice system idle
// iowait irq softirq steal ...): the busy time of every process, and the
// steal time.
func machineTimes(stat string) (busy, steal time.Duration) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	for i := 1; i < len(f) && i <= 8; i++ {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		switch i {
		case 4, 5: // idle, iowait
		case 8:
			steal = time.Duration(n) * tick
		default:
			busy += time.Duration(n) * tick
		}
	}
	return busy, steal
}

// Cores returns, between from and s over wall time, the cores this
// process used and the cores other processes used.
func (s Sample) Cores(from Sample, wall time.Duration) (self, others float64) {
	self = (s.Self - from.Self).Seconds() / wall.Seconds()
	others = max(0, (s.Machine-from.Machine-(s.Self-from.Self)).Seconds()/wall.Seconds())
	return self, others
}

// StealCores returns, between from and s over wall time, the cores the
// hypervisor withheld from this machine while it had work to run.
func (s Sample) StealCores(from Sample, wall time.Duration) float64 {
	return (s.Steal - from.Steal).Seconds() / wall.Seconds()
}
