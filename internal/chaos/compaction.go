package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concordtx/concord/wire"
)

// coordStats is the part of the coordinator's GET /v1/stats a chaos run
// reads.
type coordStats struct {
	Live        int   `json:"live"`        // transactions in its table
	Compactions int64 `json:"compactions"` // compaction passes since it started
	Log         struct {
		Segments        int   `json:"segments"`
		SegmentsRemoved int64 `json:"segments_removed"`
		Bytes           int64 `json:"bytes"`
	} `json:"log"`
}

// Compaction is what a run learnt about the coordinator's log once settled.
type Compaction struct {
	// Checked is false when the coordinator exposes no /v1/stats.
	Checked bool `json:"checked"`
	// Compacted reports that a compaction pass ran while the coordinator had
	// no live transaction, so that every record before the log's end was
	// released for deletion.
	Compacted bool `json:"compacted"`
	Live      int  `json:"live"`
	// Segments and SegmentsRemoved are the log's, as the coordinator counts
	// them (removals since its last start).
	Segments        int   `json:"segments"`
	SegmentsRemoved int64 `json:"segments_removed"`
}

// awaitCompaction waits, after settling, for a compaction pass of the
// coordinator that finds no live transaction: from then on nothing pins the
// log, and wal deletes every segment but the one being written.
func (c *cluster) awaitCompaction(ctx context.Context, deadline time.Time) (Compaction, error) {
	var first coordStats
	err := c.getJSON(ctx, c.coordURL+wire.PathStats, &first)
	if errors.Is(err, errNotFound) {
		return Compaction{}, nil
	}
	if err != nil {
		return Compaction{}, err
	}
	for {
		var st coordStats
		if err := c.getJSON(ctx, c.coordURL+wire.PathStats, &st); err != nil {
			return Compaction{}, err
		}
		got := Compaction{Checked: true, Live: st.Live, Segments: st.Log.Segments, SegmentsRemoved: st.Log.SegmentsRemoved}
		// With nothing live, a pass releases every record before the log's
		// end, and wal keeps only the segment being written.
		if first.Live == 0 && st.Live == 0 && st.Compactions > first.Compactions && st.Log.Segments == 1 {
			got.Compacted = true
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("no compaction pass with nothing live down to one segment: %d live transactions, %d passes since settling, %d segments",
				st.Live, st.Compactions-first.Compactions, st.Log.Segments)
		}
		if st.Live != 0 {
			first = st // wait for a pass after the table emptied
		}
		if !sleep(ctx.Done(), 200*time.Millisecond) {
			return got, ctx.Err()
		}
	}
}
