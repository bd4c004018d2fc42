// Package testutil holds helpers shared by Concord's tests: fake clocks,
// test participants, private namespaces on the test databases and a proxy
// that loses answers.
package testutil
