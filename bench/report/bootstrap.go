package report

import (
	"cmp"
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
	// Paired: resampled by repetition rather than each driver on its own.
	Paired bool `json:"paired,omitempty"`
}

// RatioInterval is the percentile-bootstrap 90% interval of
// median(num)/median(den): each side is resampled with replacement on its
// own, and the 5th and 95th percentiles of the resampled ratios are the
// ends. It is nil when either side has fewer than minSamples values or a
// resampled den has a zero median. The generator is seeded afresh on each
// call, so a report is reproducible and a row's interval does not depend
// on the rows before it.
func RatioInterval(num, den []float64) *Interval {
	if len(num) < minSamples || len(den) < minSamples {
		return nil
	}
	numBuf, denBuf := make([]float64, len(num)), make([]float64, len(den))
	return bootstrap(func(rng *rand.Rand) (float64, float64) {
		return resampledMedian(rng, num, numBuf), resampledMedian(rng, den, denBuf)
	})
}

// SampleRatioInterval is RatioInterval for mynet's samples num and
// bridge's den, paired by repetition when it can be: the suite runs the
// drivers interleaved, so the samples of one rep were taken seconds apart
// and share the machine's drift (other load, page cache, the engine's
// growing state). Resampling reps rather than each side keeps that drift
// out of the interval, which the independent bootstrap would count as
// noise. Pairing needs each rep exactly once on each side and the same reps
// on both; otherwise (a failed rep, samples without reps) it falls back to
// RatioInterval.
func SampleRatioInterval(num, den []Sample) *Interval {
	n, d, ok := pairByRep(num, den)
	if !ok {
		return RatioInterval(values(num), values(den))
	}
	if len(n) < minSamples {
		return nil
	}
	numBuf, denBuf := make([]float64, len(n)), make([]float64, len(d))
	iv := bootstrap(func(rng *rand.Rand) (float64, float64) {
		for j := range numBuf {
			i := rng.IntN(len(n))
			numBuf[j], denBuf[j] = n[i], d[i]
		}
		slices.Sort(numBuf)
		slices.Sort(denBuf)
		return Quantile(numBuf, 0.5), Quantile(denBuf, 0.5)
	})
	if iv != nil {
		iv.Paired = true
	}
	return iv
}

// pairByRep returns num's and den's values side by side in the order of
// their reps, so the draws do not depend on the order samples were added;
// ok only when both hold the same reps, each once.
func pairByRep(num, den []Sample) (n, d []float64, ok bool) {
	if len(num) != len(den) || len(num) == 0 {
		return nil, nil, false
	}
	denByRep := make(map[int]float64, len(den))
	for _, s := range den {
		if _, dup := denByRep[s.Rep]; dup {
			return nil, nil, false
		}
		denByRep[s.Rep] = s.Value
	}
	byRep := slices.Clone(num)
	slices.SortFunc(byRep, func(a, b Sample) int { return cmp.Compare(a.Rep, b.Rep) })
	for i, s := range byRep {
		if _, found := denByRep[s.Rep]; !found || (i > 0 && byRep[i-1].Rep == s.Rep) {
			return nil, nil, false
		}
		n, d = append(n, s.Value), append(d, denByRep[s.Rep])
	}
	return n, d, true
}

// bootstrap draws resamples (num, den) medians from a generator seeded
// the same on every call and returns the 5th and 95th percentiles of
// their ratios, nil if a den median is zero.
func bootstrap(draw func(*rand.Rand) (num, den float64)) *Interval {
	rng := rand.New(rand.NewPCG(1, 2))
	ratios := make([]float64, resamples)
	for i := range ratios {
		n, d := draw(rng)
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

func values(s []Sample) []float64 {
	v := make([]float64, len(s))
	for i, x := range s {
		v[i] = x.Value
	}
	return v
}

// span prints an interval to the ratio column's precision, "-" for none.
func span(iv *Interval) string {
	if iv == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f–%.3f", iv.Lo, iv.Hi)
}
