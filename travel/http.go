package travel

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

// Paths a travel service serves besides the participant protocol.
const (
	PathInventory    = "/v1/inventory"
	PathReservations = "/v1/reservations"
)

// ReservationPath is where one transaction's reservation is read.
func ReservationPath(id concord.TxID) string { return PathReservations + "/" + string(id) }

// InventoryResponse answers GET PathInventory.
type InventoryResponse struct {
	Service string `json:"service"`
	Items   []Item `json:"items"`
}

// ReservationResponse answers GET ReservationPath(id).
type ReservationResponse struct {
	Service string `json:"service"`
	Reservation
}

// ReservationList answers GET PathReservations[?state=prepared|committed|aborted|all].
type ReservationList struct {
	Service      string        `json:"service"`
	Reservations []Reservation `json:"reservations"`
}

// queryHandler serves the read-only views of a store: inventory and
// reservations.
type queryHandler struct {
	service string
	store   Store
}

func (q *queryHandler) register(mux *http.ServeMux) {
	mux.HandleFunc(PathInventory, q.inventory)
	mux.HandleFunc(PathReservations, q.list)
	mux.HandleFunc(PathReservations+"/", q.one)
}

func (q *queryHandler) inventory(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		wire.MethodNotAllowed(w, r, http.MethodGet)
		return
	}
	items, err := q.store.Items(r.Context())
	if err != nil {
		wire.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("read inventory: %v", err))
		return
	}
	wire.WriteJSON(w, http.StatusOK, InventoryResponse{Service: q.service, Items: items})
}

func (q *queryHandler) list(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		wire.MethodNotAllowed(w, r, http.MethodGet)
		return
	}
	query := r.URL.Query()
	for k := range query {
		if k != "state" {
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q; only state is accepted", k))
			return
		}
	}
	if len(query["state"]) > 1 {
		wire.WriteError(w, http.StatusBadRequest, "state given more than once")
		return
	}
	state, err := ParseStateFilter(query.Get("state"))
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	list, err := q.store.Reservations(r.Context(), state)
	if err != nil {
		wire.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("list reservations: %v", err))
		return
	}
	if list == nil {
		list = []Reservation{}
	}
	wire.WriteJSON(w, http.StatusOK, ReservationList{Service: q.service, Reservations: list})
}

func (q *queryHandler) one(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		wire.MethodNotAllowed(w, r, http.MethodGet)
		return
	}
	raw := strings.TrimPrefix(r.URL.Path, PathReservations+"/")
	id := concord.TxID(raw)
	if err := concord.ValidateTxID(id); err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := q.store.Reservation(r.Context(), id)
	switch {
	case errors.Is(err, ErrNoReservation):
		wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("%s holds no reservation for transaction %s", q.service, id))
		return
	case err != nil:
		wire.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("read reservation: %v", err))
		return
	}
	wire.WriteJSON(w, http.StatusOK, ReservationResponse{Service: q.service, Reservation: res})
}
