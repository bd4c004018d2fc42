package chaos

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ErrBadOptions is returned by Run for options that cannot work.
var ErrBadOptions = errors.New("bad chaos options")

// Options configures one chaos run.
type Options struct {
	// Binary is the concord executable run as every process. Required.
	Binary string
	// Dir holds every process's data directory and log. Required; created
	// if missing.
	Dir string
	// Seed drives the workload and the faults: the same seed replays the same
	// schedule of bookings and faults (process timing still varies).
	Seed uint64
	// Duration is how long bookings and faults go on before everything is
	// healed and checked; default 60 s.
	Duration time.Duration
	// Clients is the number of concurrent booking clients; default 8.
	Clients int
	// Rate caps bookings started per second across all clients; default 60.
	Rate float64
	// ScarceCapacity, when above 0, replaces the capacity of each service's
	// scarce SKU (20 to 40 units), so that a short run sells it out and sees
	// refused bookings however few transactions the machine manages.
	ScarceCapacity int64
	// FaultEvery is the mean time between two faults; default 1.5 s.
	FaultEvery time.Duration
	// SettleTimeout bounds the wait, after healing, for every transaction to
	// finish; default 60 s.
	SettleTimeout time.Duration
	// StartTimeout bounds one process start (until it answers HTTP);
	// default 20 s.
	StartTimeout time.Duration
	// Progress receives a line every ProgressEvery (default 3 s); nil is
	// silent.
	Progress      io.Writer
	ProgressEvery time.Duration
	// CoordinatorArgs and ParticipantArgs are appended to the processes'
	// command lines.
	CoordinatorArgs []string
	ParticipantArgs []string
}

func (o *Options) validate() error {
	if o.Duration == 0 {
		o.Duration = 60 * time.Second
	}
	if o.Clients == 0 {
		o.Clients = 8
	}
	if o.Rate == 0 {
		o.Rate = 60
	}
	if o.FaultEvery == 0 {
		o.FaultEvery = 1500 * time.Millisecond
	}
	if o.SettleTimeout == 0 {
		o.SettleTimeout = 60 * time.Second
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 20 * time.Second
	}
	if o.ProgressEvery == 0 {
		o.ProgressEvery = 3 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	switch {
	case o.Binary == "":
		return fmt.Errorf("%w: no concord binary given", ErrBadOptions)
	case o.Dir == "":
		return fmt.Errorf("%w: no run directory given", ErrBadOptions)
	case o.Duration < 0 || o.FaultEvery < 0 || o.SettleTimeout < 0 || o.StartTimeout < 0 || o.ProgressEvery < 0:
		return fmt.Errorf("%w: durations must be positive", ErrBadOptions)
	case o.Clients < 0 || o.Clients > 1000:
		return fmt.Errorf("%w: %d clients, want 1 to 1000", ErrBadOptions, o.Clients)
	case !(o.Rate > 0 && o.Rate <= 100000):
		return fmt.Errorf("%w: rate %v, want more than 0 and at most 100000 bookings/s", ErrBadOptions, o.Rate)
	}
	st, err := os.Stat(o.Binary)
	if err != nil {
		return fmt.Errorf("%w: binary: %w", ErrBadOptions, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%w: binary %s is not an executable file", ErrBadOptions, o.Binary)
	}
	return nil
}
