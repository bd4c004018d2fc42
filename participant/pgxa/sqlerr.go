package pgxa

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes the resource tells apart.
const (
	codeUniqueViolation  = "23505"
	codeUndefinedObject  = "42704" // prepared transaction ... does not exist
	codeDuplicateObject  = "42710" // transaction identifier ... is already in use
	codeObjectInUse      = "55000" // prepared transaction ... is busy (object_not_in_prerequisite_state)
	codeLockNotAvailable = "55P03" // lock_timeout
	codeOutOfMemory      = "53200" // maximum number of prepared transactions reached
	codeDeadlock         = "40P01"
	codeSerialization    = "40001"
)

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

func pgMessage(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}

// transient reports whether err is a conflict with other transactions that
// should turn into a no vote rather than an error, and the reason to give.
func transient(err error) (string, bool) {
	switch {
	case isCode(err, codeLockNotAvailable):
		return "busy: lock wait timed out (a prepared transaction holds the rows)", true
	case isCode(err, codeDeadlock):
		return "busy: deadlock detected", true
	case isCode(err, codeSerialization):
		return "busy: serialization failure", true
	}
	return "", false
}

// isServerError reports whether err is an answer from the server, as
// opposed to a failure to hear one.
func isServerError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}
