package coordinator

import "github.com/concordtx/concord"

// CrashPoint names a moment in the driver where Options.CrashHook is called.
type CrashPoint string

// Crash points: before a decision (commit or abort) is logged, after a log
// record of each type has been appended (and synced, if it had to be), and
// after a request carrying a message of each kind has returned (whatever
// its answer) but before the answer is used.
const (
	BeforeLogDecision CrashPoint = "before-log-decision"
	AfterLogBegin     CrashPoint = "after-log-begin"
	AfterLogCommit    CrashPoint = "after-log-commit"
	AfterLogAbort     CrashPoint = "after-log-abort"
	AfterLogEnd       CrashPoint = "after-log-end"
	AfterSendPrepare  CrashPoint = "after-send-prepare"
	AfterSendCommit   CrashPoint = "after-send-commit"
	AfterSendAbort    CrashPoint = "after-send-abort"
	crashPointUnknown CrashPoint = "unknown"
)

// CrashPoints lists every CrashPoint, for tests that visit them all.
var CrashPoints = []CrashPoint{
	BeforeLogDecision, AfterLogBegin, AfterLogCommit, AfterLogAbort, AfterLogEnd,
	AfterSendPrepare, AfterSendCommit, AfterSendAbort,
}

// crashAt calls the hook; a non-nil answer halts the coordinator as if its
// process had died there: nothing more is logged, sent or answered.
func (c *Coordinator) crashAt(p CrashPoint, id concord.TxID) bool {
	if c.opts.CrashHook == nil {
		return false
	}
	if err := c.opts.CrashHook(p, id); err != nil {
		c.halt(err)
		return true
	}
	return false
}
