package wal

// SetOSSyncDir replaces the directory sync of OSFS.MkdirAll for a test and
// returns a function that puts it back.
func SetOSSyncDir(fn func(string) error) (restore func()) {
	old := osSyncDir
	osSyncDir = fn
	return func() { osSyncDir = old }
}
