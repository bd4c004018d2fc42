// Package testutil holds helpers shared by Concord's tests: fake clocks and
// test participants. Database helpers are in its testdb subpackage.
package testutil
