package coordinator

import (
	"os"
	"syscall"
)

// statBlocks returns the 512-byte blocks the file takes on disk.
func statBlocks(fi os.FileInfo) (int64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Blocks, true
}
