//go:build race

package plugin

// raceSlowdown is how much slower code runs under the race detector, for
// tests bounded by a deadline.
const raceSlowdown = 10
