package travel

import (
	"net/http"

	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wire"
)

// StatsResponse answers GET wire.PathStats: the participant server's
// counters, the file store's log counters (absent for other stores) and the
// process's runtime figures.
type StatsResponse struct {
	Service string             `json:"service"`
	Server  participant.Status `json:"server"`
	Log     *wal.Stats         `json:"log,omitempty"`
	Runtime wire.RuntimeStats  `json:"runtime"`
}

// Stats returns the service's counters.
func (s *Service) Stats() StatsResponse {
	st := StatsResponse{Service: s.name, Server: s.server.Status(), Runtime: wire.ReadRuntimeStats()}
	if l, ok := StoreLogStats(s.store); ok {
		st.Log = &l
	}
	return st
}

// StoreLogStats returns the log counters of a store kept on a log (the file
// store), looking through stores that wrap another: a wrapper (one that adds
// behaviour around the calls of the store inside) has an Unwrap() Store
// method. A store not on a log (memory, SQL) has none.
func StoreLogStats(st Store) (wal.Stats, bool) {
	for st != nil {
		if fs, ok := st.(interface{ Stats() filestore.Stats }); ok {
			return fs.Stats().Log, true
		}
		u, ok := st.(interface{ Unwrap() Store })
		if !ok {
			break
		}
		st = u.Unwrap()
	}
	return wal.Stats{}, false
}

func (s *Service) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		wire.MethodNotAllowed(w, r, http.MethodGet)
		return
	}
	wire.WriteJSON(w, http.StatusOK, s.Stats())
}
