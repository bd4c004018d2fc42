package mysqlxa

import (
	"errors"

	"github.com/go-sql-driver/mysql"
)

// MySQL error numbers the resource tells apart.
const (
	errDupEntry        = 1062 // duplicate entry for key
	errLockWaitTimeout = 1205 // lock wait timeout exceeded
	errDeadlock        = 1213 // deadlock found when trying to get lock
	errXANota          = 1397 // XAER_NOTA: unknown XID
	errXADupID         = 1440 // XAER_DUPID: the XID already exists
	errXARBTimeout     = 1613 // XA_RBTIMEOUT: branch rolled back, took too long
	errXARBDeadlock    = 1614 // XA_RBDEADLOCK: branch rolled back, deadlock
)

func isNumber(err error, n uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == n
}

// transient reports whether err is a conflict with other transactions that
// should turn into a no vote rather than an error, and the reason to give.
func transient(err error) (string, bool) {
	switch {
	case isNumber(err, errLockWaitTimeout), isNumber(err, errXARBTimeout):
		return "busy: lock wait timed out (a prepared transaction holds the rows)", true
	case isNumber(err, errDeadlock), isNumber(err, errXARBDeadlock):
		return "busy: deadlock detected", true
	}
	return "", false
}

// isServerError reports whether err is an answer from the server, as
// opposed to a failure to hear one.
func isServerError(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me)
}
