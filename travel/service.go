package travel

import (
	"context"
	"errors"
	"fmt"
	"github.com/concordtx/concord/openapi"
	"net/http"
	"sync"

	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wire"
)

// ErrBadOptions is returned by New for Options it cannot use.
var ErrBadOptions = errors.New("travel: bad options")

// PathStatus is where a service reports its participant server's counters
// and the transactions it holds in doubt.
const PathStatus = "/v1/status"

// Options configures a Service.
type Options struct {
	// Name is the participant name the coordinator knows the service by,
	// shown in every answer: flights, hotels or cars. Required.
	Name string
	// Store holds the inventory. Required. The Service closes it on Close.
	Store Store
	// Server tunes the participant protocol server (coordinator URL for
	// in-doubt queries after a restart, clock, timeouts, logger). Its
	// Resource must be left nil: the Store is the resource.
	Server participant.Options
}

func (o *Options) validate() error {
	switch {
	case o.Name == "":
		return fmt.Errorf("%w: Name is required", ErrBadOptions)
	case o.Store == nil:
		return fmt.Errorf("%w: Store is required", ErrBadOptions)
	case o.Server.Resource != nil:
		return fmt.Errorf("%w: Server.Resource must be nil: the Store is the resource", ErrBadOptions)
	}
	return nil
}

// Service is one travel service: a participant server over an inventory
// Store, plus read-only views of the inventory and its reservations.
type Service struct {
	name   string
	store  Store
	server *participant.Server

	closeOnce sync.Once
	closeErr  error
}

// StatusResponse answers GET PathStatus.
type StatusResponse struct {
	Service string               `json:"service"`
	Server  participant.Status   `json:"server"`
	InDoubt []participant.TxInfo `json:"in_doubt"`
}

// New returns a service that is not yet started.
func New(opts Options) (*Service, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	so := opts.Server
	so.Resource = opts.Store
	srv, err := participant.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("travel: %w", err)
	}
	registerStoreMetrics(srv, opts.Store)
	return &Service{name: opts.Name, store: opts.Store, server: srv}, nil
}

// Name returns the service's participant name.
func (s *Service) Name() string { return s.name }

// Store returns the service's inventory store.
func (s *Service) Store() Store { return s.store }

// Server returns the participant server, for its status and in-doubt list.
func (s *Service) Server() *participant.Server { return s.server }

// Start recovers the prepared reservations and starts resolving those in
// doubt. The protocol endpoints answer 503 until it returns nil.
func (s *Service) Start(ctx context.Context) error {
	if err := s.server.Start(ctx); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	return nil
}

// Handler serves the participant protocol (POST /v1/prepare, /v1/commit,
// /v1/abort), GET /v1/inventory, GET /v1/reservations[?state=...], GET
// /v1/reservations/{txid}, GET /v1/status, GET /v1/stats, GET /metrics (Prometheus) and GET
// /healthz.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	proto := s.server.Handler()
	for _, p := range []string{wire.PathPrepare, wire.PathCommit, wire.PathAbort, openapi.Path} {
		mux.Handle(p, proto)
	}
	(&queryHandler{service: s.name, store: s.store}).register(mux)
	mux.HandleFunc(PathStatus, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			wire.MethodNotAllowed(w, r, http.MethodGet)
			return
		}
		in := s.server.InDoubt()
		if in == nil {
			in = []participant.TxInfo{}
		}
		wire.WriteJSON(w, http.StatusOK, StatusResponse{Service: s.name, Server: s.server.Status(), InDoubt: in})
	})
	mux.HandleFunc(wire.PathStats, s.serveStats)
	mux.Handle(wire.PathMetrics, s.server.MetricsHandler())
	mux.HandleFunc(wire.PathHealth, func(w http.ResponseWriter, r *http.Request) {
		if !s.server.Status().Started {
			wire.WriteError(w, http.StatusServiceUnavailable, s.name+" is not started")
			return
		}
		wire.WriteJSON(w, http.StatusOK, map[string]string{"service": s.name, "status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// Close stops the participant server, then closes the store. It decides
// nothing: prepared reservations stay prepared for the next start. Calling it
// again returns the first call's result.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.server.Close(), s.store.Close())
	})
	return s.closeErr
}
