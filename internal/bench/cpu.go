package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100
// on every Linux this runs on).
const clockTick = 10 * time.Millisecond

// cpuTime returns the user+system CPU time process pid has used so far,
// read from /proc (pid 0 means this process). It fails where there is no
// /proc.
func cpuTime(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no command field", path)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields", path, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: bad CPU times", path)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// cpuTimes reads the CPU time of every started process and of the bench
// ("bench"); processes that cannot be read are left out.
func cpuTimes(c *cluster) map[string]time.Duration {
	out := map[string]time.Duration{}
	if d, err := cpuTime(0); err == nil {
		out["bench"] = d
	}
	for _, p := range c.procs {
		if d, err := cpuTime(p.Pid()); err == nil {
			out[p.Name()] = d
		}
	}
	return out
}
