// Package mysqlxa is a participant.Resource over MySQL/MariaDB XA
// transactions: Prepare runs a service's work between XA START and XA END on
// one connection and ends it with XA PREPARE, Commit and Abort are XA COMMIT
// and XA ROLLBACK, Recover reads XA RECOVER, and a transaction with a single
// participant commits with XA COMMIT ... ONE PHASE.
//
// A prepared XA transaction stays attached to the connection that prepared
// it until that connection closes (then, since MariaDB 10.5 and MySQL 5.7.7,
// it survives detached and any connection may finish it). The Resource keeps
// that connection and finishes the transaction on it, up to MaxPinned of
// them; past that, after a crash, or whenever the connection is lost, it
// closes it and finishes the transaction from any connection, waiting out the
// moment in which the server still counts it attached to the closing session.
//
// Idempotence is kept in the database, like a sub-transaction barrier: a
// decision table holds one row per decided transaction of this participant.
// The row of a yes vote is written inside the XA transaction, so it becomes
// visible exactly when XA COMMIT succeeds; an abort or a no vote writes an
// "aborted" row, so a duplicate or late PREPARE is refused and a COMMIT of a
// transaction never prepared is told apart from a repeated one.
//
// A decision row is kept by the time rule of participant.Retention
// (Options.Remember, with the clock Options.Now): in forget_ms it holds when
// it may be pruned, its transaction's deadline plus the skew allowance, and
// every PruneEvery decisions the rows past it are deleted (rows an older
// version wrote, without forget_ms, by Options.Retention as before). A
// PREPARE past its deadline for a transaction with no row is refused and
// nothing is written. The coordinator a PREPARE names is written, committed
// on its own, to <Table>_coordinators before the work starts, and Recover
// returns it with each prepared transaction; a row there is pruned once its
// time has passed and its transaction is no longer prepared.
package mysqlxa
