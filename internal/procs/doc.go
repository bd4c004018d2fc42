// Package procs starts Concord processes (the concord binary as a
// coordinator or a service) as children in their own process groups, waits
// until they answer over HTTP, and stops them with their whole group.
package procs
