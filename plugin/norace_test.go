//go:build !race

package plugin

// raceSlowdown: see race_test.go.
const raceSlowdown = 1
