package driver

import "github.com/sirupsen/logrus"

// warnUndo logs an undo that failed. It is not returned: the failure that
// made the undo run is what the caller must hear about, and what the undo
// left behind is removed by a retry or by reconcile at the next start,
// which the fields help an operator to check. A nil log (tests calling a
// step directly) logs nothing.
func warnUndo(log *logrus.Entry, fields logrus.Fields, what string, err error) {
	if err != nil && log != nil {
		log.WithFields(fields).WithError(err).Warn("undoing a failed change: " + what)
	}
}
