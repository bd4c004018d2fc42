// Package participanttest is the conformance suite every participant.Resource
// backend runs, plus the test doubles it needs: a fake clock and an
// in-memory resource.
package participanttest
