package failpoint

import (
	"fmt"
	"os"
	"strings"
)

// firedPrefix starts the line a crashing process writes to standard error.
const firedPrefix = "concord: failpoint fired: "

// FiredLine is the line a process writes to standard error just before a
// failpoint kills it.
func FiredLine(name string, hit uint64) string {
	return fmt.Sprintf("%s%s (hit %d), killing the process\n", firedPrefix, name, hit)
}

// ParseFired returns the failpoint named by a line FiredLine wrote.
func ParseFired(line string) (name string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), firedPrefix)
	if !ok {
		return "", false
	}
	name, _, _ = strings.Cut(rest, " ")
	return name, Known(name)
}

// crashProcess says which failpoint fired, then kills the process with
// SIGKILL: no deferred call runs and nothing is flushed. os.Stderr is
// unbuffered, so the line is out before the signal.
func crashProcess(name string, hit uint64) {
	os.Stderr.WriteString(FiredLine(name, hit))
	killSelf()
	// SIGKILL cannot be caught; should delivery ever lag, never return into
	// the code after the failpoint.
	select {}
}
