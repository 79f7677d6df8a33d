package report

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// A single run on a 2-core machine spreads ±10–20% from rep to rep, so a
// ratio of medians of 1.05 alone does not tell a slower mynet from noise.
// The bootstrap below says how far the ratio could move between runs.
const (
	// resamples keeps the interval's ends stable to about the table's
	// third decimal between seeds.
	resamples = 2000
	// minSamples: below it a resample is a few repeated values and its
	// percentiles say more about the resampling than about the run.
	minSamples = 8
)

// Interval is a 90% interval of the ratio mynet/bridge.
type Interval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// RatioInterval is the percentile-bootstrap 90% interval of
// median(num)/median(den): each side is resampled with replacement on its
// own, since a mynet rep is not paired with a bridge rep, and the 5th and
// 95th percentiles of the resampled ratios are the ends. It is nil when
// either side has fewer than minSamples values or a resampled den has a
// zero median. The generator is seeded afresh on each call, so a report is
// reproducible and a row's interval does not depend on the rows before it.
func RatioInterval(num, den []float64) *Interval {
	if len(num) < minSamples || len(den) < minSamples {
		return nil
	}
	rng := rand.New(rand.NewPCG(1, 2))
	numBuf, denBuf := make([]float64, len(num)), make([]float64, len(den))
	ratios := make([]float64, resamples)
	for i := range ratios {
		n, d := resampledMedian(rng, num, numBuf), resampledMedian(rng, den, denBuf)
		if d == 0 {
			return nil
		}
		ratios[i] = n / d
	}
	slices.Sort(ratios)
	return &Interval{Lo: Quantile(ratios, 0.05), Hi: Quantile(ratios, 0.95)}
}

// resampledMedian fills buf with len(buf) values drawn from v with
// replacement and returns their median.
func resampledMedian(rng *rand.Rand, v, buf []float64) float64 {
	for i := range buf {
		buf[i] = v[rng.IntN(len(v))]
	}
	slices.Sort(buf)
	return Quantile(buf, 0.5)
}

// span prints an interval to the ratio column's precision, "-" for none.
func span(iv *Interval) string {
	if iv == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f–%.3f", iv.Lo, iv.Hi)
}
