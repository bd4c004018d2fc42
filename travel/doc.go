// Package travel is the reservation domain of the demo: flight, hotel and car
// inventory services that take part in Concord transactions, each holding
// seats, rooms or cars on prepare, confirming them on commit and releasing
// them on abort.
package travel
