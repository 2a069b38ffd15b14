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
