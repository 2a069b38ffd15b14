package main

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// lowestPriority is the nice value of the attackers' threads: the lowest
// priority there is, so that the attack's own CPU work yields to the
// server's, as it would on another machine.
const lowestPriority = 19

// lowerPriority sets every thread of this process to the lowest priority
// and returns the lowest nice value among them afterwards. Linux keeps a
// nice value per thread and a new thread takes its creator's: once every
// thread has it, so has every thread made later.
func lowerPriority() (int, error) {
	for range 10 {
		tids, err := threads()
		if err != nil {
			return -1, err
		}
		for _, tid := range tids {
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, lowestPriority); err != nil {
				return -1, err
			}
		}
		again, err := threads()
		if err != nil {
			return -1, err
		}
		if slices.Equal(tids, again) {
			break
		}
	}
	tids, err := threads()
	if err != nil {
		return -1, err
	}
	least := lowestPriority
	for _, tid := range tids {
		if n, ok := threadNice(tid); ok {
			least = min(least, n)
		}
	}
	return least, nil
}

// threads lists this process's thread IDs, sorted.
func threads() ([]int, error) {
	es, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	var tids []int
	for _, e := range es {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	slices.Sort(tids)
	return tids, nil
}

// threadNice reads a thread's nice value, the 19th field of its stat.
func threadNice(tid int) (int, bool) {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := strings.LastIndexByte(string(b), ')') // the command name may hold spaces
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:])) // from the 3rd field on
	if len(f) <= 16 {
		return 0, false
	}
	n, err := strconv.Atoi(f[16])
	return n, err == nil
}
