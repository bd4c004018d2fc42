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
package pgxa
