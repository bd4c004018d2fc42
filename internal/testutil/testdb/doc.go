// Package testdb gives tests private namespaces on real PostgreSQL and
// MySQL/MariaDB servers, and a loopback proxy that loses answers.
//
// The servers are the machine's own at the default addresses when they can
// serve the tests; when one cannot (down, or PostgreSQL without prepared
// transactions), the package starts a throwaway server from the installed
// binaries, once per test binary, and Main removes it when the tests end.
package testdb
