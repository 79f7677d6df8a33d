// Package report holds the benchmark suite's results: the samples one run
// measured, their medians and percentiles per metric and driver, the ratio
// mynet/bridge, the goals checked against those ratios, and the
// files a run leaves behind (JSON, CSV, a text table, PNG plots).
//
// The suite that measures lives in e2e (build tags e2e and bench), since it
// drives the e2e harness's private engine; this package is plain Go so that
// its arithmetic and output are unit-tested without root.
package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Drivers as samples name them. Variant tells Docker's bridge with its
// userland proxy from the bridge without it; mynet never uses the proxy,
// and its samples carry the variant of the engine phase they were taken in.
const (
	Bridge   = "bridge"
	Mynet    = "mynet"
	None     = "none"     // --network none: the engine's own floor
	Baseline = "baseline" // two namespaces, no Docker: the machine's limit

	Proxy   = "proxy"    // dockerd with its default userland proxy
	NoProxy = "no-proxy" // dockerd --userland-proxy=false
)

// Sample is one measured value.
type Sample struct {
	Scenario string  `json:"scenario"`
	Metric   string  `json:"metric"`
	Driver   string  `json:"driver"`
	Variant  string  `json:"variant,omitempty"`
	X        float64 `json:"x,omitempty"` // the curve's parameter: ports, endpoints
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Rep      int     `json:"rep"`
	// PlotOnly marks a point of a curve that the table leaves out (one
	// start time per endpoint count, say); the table has its summary.
	PlotOnly bool `json:"plot_only,omitempty"`
}

// Key names the table row a sample belongs to: drivers are the row's
// columns. Samples that differ only in X form one curve.
type Key struct {
	Scenario, Metric, Variant string
	X                         float64
}

func (s Sample) Key() Key { return Key{s.Scenario, s.Metric, s.Variant, s.X} }

// Machine describes where a run happened.
type Machine struct {
	CPU           string `json:"cpu"`
	Cores         int    `json:"cores"`
	MemoryMiB     int    `json:"memory_mib"`
	Kernel        string `json:"kernel"`
	Engine        string `json:"engine"` // stable or current
	EngineVersion string `json:"engine_version"`
	Containerd    string `json:"containerd,omitempty"`
	Storage       string `json:"storage"`
	IptablesMode  string `json:"iptables,omitempty"`
}

// Run is everything one invocation measured. Add is safe for concurrent use.
type Run struct {
	Mode     string    `json:"mode"` // quick or full
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	Notes    []string  `json:"notes,omitempty"`

	mu      sync.Mutex // guards Samples
	Samples []Sample   `json:"samples"`
}

// Add records samples.
func (r *Run) Add(s ...Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Samples = append(r.Samples, s...)
}

// Note records a remark printed with the table and kept in the JSON.
func (r *Run) Note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Select returns the values of the samples that match key and driver, in
// the order they were taken.
func (r *Run) Select(k Key, driver string) []float64 {
	return values(r.SelectSamples(k, driver))
}

// SelectSamples is Select with the whole samples, whose Rep pairs a mynet
// value with the bridge value taken beside it.
func (r *Run) SelectSamples(k Key, driver string) []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Sample
	for _, s := range r.Samples {
		if s.Key() == k && s.Driver == driver {
			out = append(out, s)
		}
	}
	return out
}

// Stats summarises the values of one metric for one driver.
type Stats struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize computes Stats; an empty slice gives N == 0.
func Summarize(v []float64) Stats {
	if len(v) == 0 {
		return Stats{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return Stats{N: len(s), Median: Quantile(s, 0.5), P90: Quantile(s, 0.9), Min: s[0], Max: s[len(s)-1]}
}

// Quantile of sorted values, by linear interpolation between closest ranks
// (the R-7 / numpy default), so the median of an even count is the mean of
// the middle two.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

// Keys returns the run's table rows in the order their first samples were
// taken, which is the order the scenarios ran in.
func (r *Run) Keys() []Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[Key]bool{}
	var keys []Key
	for _, s := range r.Samples {
		if !s.PlotOnly && !seen[s.Key()] {
			seen[s.Key()] = true
			keys = append(keys, s.Key())
		}
	}
	return keys
}

// Unit returns the unit of a row's samples.
func (r *Run) Unit(k Key) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.Samples {
		if s.Key() == k {
			return s.Unit
		}
	}
	return ""
}

// Curve returns the (x, median y) points of one driver's samples of
// scenario and metric in variant, whatever their X, sorted by x.
func (r *Run) Curve(scenario, metric, variant, driver string) (xs, ys []float64) {
	r.mu.Lock()
	byX := map[float64][]float64{}
	for _, s := range r.Samples {
		if s.Scenario == scenario && s.Metric == metric && s.Variant == variant && s.Driver == driver {
			byX[s.X] = append(byX[s.X], s.Value)
		}
	}
	r.mu.Unlock()
	for x := range byX {
		xs = append(xs, x)
	}
	slices.SortFunc(xs, cmp.Compare)
	for _, x := range xs {
		ys = append(ys, Summarize(byX[x]).Median)
	}
	return xs, ys
}
