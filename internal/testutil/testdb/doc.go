// Package testdb gives tests private namespaces on the real PostgreSQL and
// MySQL/MariaDB test servers, and a loopback proxy that loses answers.
package testdb
