package pgxa

import "github.com/concordtx/concord"

// AsOlderVersion makes the resource check new ids as versions did before
// ids made only of dots were refused, until the returned function is
// called.
func AsOlderVersion() (restore func()) {
	validateNewID = concord.ValidateStoredTxID
	return func() { validateNewID = concord.ValidateTxID }
}
