// Package pgxa is a participant.Resource over PostgreSQL prepared
// transactions: Prepare runs a service's work in a transaction that ends with
// PREPARE TRANSACTION, Commit and Abort are COMMIT PREPARED and ROLLBACK
// PREPARED from any connection, and Recover reads pg_prepared_xacts.
//
// The server must allow prepared transactions: max_prepared_transactions is 0
// by default and New refuses to start then (raise it with
// ALTER SYSTEM SET max_prepared_transactions = 64 and restart PostgreSQL).
//
// Idempotence is kept in the database itself, like a sub-transaction barrier:
// a decision table holds one row per decided transaction of this participant.
// The row of a yes vote is inserted by the prepared transaction itself, so it
// becomes visible exactly when COMMIT PREPARED succeeds; an abort or a no vote
// inserts an "aborted" row, so a duplicate or late PREPARE is refused and a
// COMMIT of a transaction never prepared is told apart from a repeated one.
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
package pgxa
