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
package mysqlxa
