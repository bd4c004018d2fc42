package failpoint

// Names of the failpoints. Each is hit right after the step its name
// describes and before the step that follows it.
const (
	// CoordinatorAfterBeginLog is hit once the coordinator has logged a
	// transaction's participants (its BEGIN record) and before any PREPARE
	// is sent.
	CoordinatorAfterBeginLog = "coordinator.after-begin-log"
	// CoordinatorAfterPrepareSent is hit once a PREPARE request to a
	// participant has returned, before its votes are used.
	CoordinatorAfterPrepareSent = "coordinator.after-prepare-sent"
	// CoordinatorAfterVotes is hit once the votes of a transaction are in
	// (or its deadline passed) and the decision is made, before it is
	// logged.
	CoordinatorAfterVotes = "coordinator.after-votes"
	// CoordinatorAfterDecisionSync is hit once a COMMIT decision is durable,
	// before any COMMIT is sent or the client is answered.
	CoordinatorAfterDecisionSync = "coordinator.after-decision-sync"
	// CoordinatorAfterCommitSent is hit once COMMIT has been sent to a
	// participant, before its acknowledgement is processed.
	CoordinatorAfterCommitSent = "coordinator.after-commit-sent"
	// ParticipantAfterPrepareSync is hit once a participant's prepared state
	// is durable, before its yes vote is sent.
	ParticipantAfterPrepareSync = "participant.after-prepare-sync"
	// ParticipantAfterCommit is hit once a participant has committed durably,
	// before it acknowledges the COMMIT.
	ParticipantAfterCommit = "participant.after-commit"
)

// Point describes one failpoint.
type Point struct {
	Name string // e.g. "coordinator.after-decision-sync"
	Doc  string // where it is hit, in one sentence
}

// points is every failpoint the environment may arm, in the order the
// protocol reaches them.
var points = []Point{
	{CoordinatorAfterBeginLog, "the coordinator logged the participants (BEGIN), no PREPARE sent yet"},
	{CoordinatorAfterPrepareSent, "a PREPARE request to a participant returned, its votes not yet used"},
	{CoordinatorAfterVotes, "the votes are in (or the deadline passed) and the decision is made, not yet logged"},
	{CoordinatorAfterDecisionSync, "the COMMIT decision is durable, no COMMIT sent and the client not answered"},
	{CoordinatorAfterCommitSent, "the coordinator sent COMMIT to a participant, its acknowledgement not yet processed"},
	{ParticipantAfterPrepareSync, "a participant's prepared state is durable, its yes vote not yet sent"},
	{ParticipantAfterCommit, "a participant committed durably, its acknowledgement not yet sent"},
}

// Points returns every known failpoint, in protocol order. The slice is a
// copy.
func Points() []Point {
	return append([]Point(nil), points...)
}

// Known reports whether name is a failpoint the environment may arm.
func Known(name string) bool {
	for _, p := range points {
		if p.Name == name {
			return true
		}
	}
	return false
}
