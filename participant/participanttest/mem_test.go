package participanttest_test

import (
	"testing"

	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
)

func TestMemResourceConformance(t *testing.T) {
	participanttest.Run(t, participanttest.Harness{
		New: func(t *testing.T, env participanttest.Env) (participant.Resource, func(t *testing.T) participant.Resource) {
			m := participanttest.NewMemResource()
			m.Now, m.Retention = env.Now, env.Retention
			return m, func(t *testing.T) participant.Resource { return m }
		},
		Yes: participanttest.YesPayload,
		No:  participanttest.NoPayload,
	})
}
