// Package metrics holds the Prometheus collectors shared by Concord's
// servers: the log's counters, read when scraped.
package metrics
