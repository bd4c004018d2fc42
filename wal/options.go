package wal

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultSegmentSize   = 64 << 20
	DefaultMaxRecordSize = 16 << 20
	DefaultPreallocate   = 1 << 20
	DefaultIdleMark      = 10 * time.Millisecond
	// maxMaxRecordSize bounds MaxRecordSize so that a record's length always
	// fits the 32-bit length field with room to spare.
	maxMaxRecordSize = 1 << 30
	// maxPreallocate bounds Preallocate: Open reads the zeros that end the
	// last segment whole.
	maxPreallocate = 1 << 30
)

// Options configures Open and Inspect. The zero value of every field except
// Dir means its default.
type Options struct {
	// Dir is the directory of segments; Open creates it if missing.
	Dir string
	// FS is the file system; nil means the real one (OSFS{}).
	FS FS
	// SegmentSize: the log rolls to a new segment once the active one is
	// past this many bytes. Default DefaultSegmentSize.
	SegmentSize int64
	// MaxRecordSize is the largest payload in bytes an append accepts.
	// Default DefaultMaxRecordSize, at most 1 GiB. Reading does not apply
	// it (a length is bounded by the bytes left in the file and the
	// format's 1 GiB), so that lowering it across a restart keeps every
	// durable record.
	MaxRecordSize int
	// Preallocate: when a write reaches the end of the zeros ahead of the
	// records in the active segment, the log writes this many more bytes
	// of zeros after it (but not past SegmentSize), before the sync that
	// makes the write durable. The syncs after it then write into space the
	// file already has, with no change of the file's size to commit, which
	// costs a file system such as ext4 markedly less time and CPU than
	// appending. Default DefaultPreallocate; negative disables it (every
	// write then grows the file); at most 1 GiB.
	Preallocate int64
	// IdleMark: once a sync has returned and no write follows within this
	// delay, the log writes and syncs a mark alone, which says that the
	// records before it were synced (see the package doc: damage to a
	// record a later mark covers refuses to open; damage to one no mark
	// covers is a torn tail). Under load the next write's own mark does
	// it at no cost. Default DefaultIdleMark; negative disables it (Close
	// still writes one).
	IdleMark time.Duration
	// Logger receives the warnings of Open (a torn tail cut, a sync
	// failure's cut); nil means slog.Default().
	Logger *slog.Logger
}

// withDefaults returns o with defaults filled in, or an error naming the
// first field that cannot be used.
func (o Options) withDefaults() (Options, error) {
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.MaxRecordSize == 0 {
		o.MaxRecordSize = DefaultMaxRecordSize
	}
	if o.Preallocate == 0 {
		o.Preallocate = DefaultPreallocate
	}
	if o.IdleMark == 0 {
		o.IdleMark = DefaultIdleMark
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, o.validate()
}

func (o Options) validate() error {
	if o.Dir == "" {
		return fmt.Errorf("%w: Dir is empty", ErrInvalidOptions)
	}
	if o.SegmentSize < 0 {
		return fmt.Errorf("%w: SegmentSize %d is negative", ErrInvalidOptions, o.SegmentSize)
	}
	if o.MaxRecordSize < 0 || o.MaxRecordSize > maxMaxRecordSize {
		return fmt.Errorf("%w: MaxRecordSize %d is outside 1..%d", ErrInvalidOptions, o.MaxRecordSize, maxMaxRecordSize)
	}
	if o.Preallocate > maxPreallocate {
		return fmt.Errorf("%w: Preallocate %d is above %d", ErrInvalidOptions, o.Preallocate, maxPreallocate)
	}
	return nil
}
