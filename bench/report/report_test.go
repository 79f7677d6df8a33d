package report

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestQuantile(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		q    float64
		want float64
	}{
		{[]float64{5}, 0.5, 5},
		{[]float64{1, 2, 3, 4}, 0.5, 2.5},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9.1},
		{[]float64{1, 2, 3}, 0, 1},
		{[]float64{1, 2, 3}, 1, 3},
	} {
		if got := Quantile(tc.in, tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Quantile(%v, %v) = %v, want %v", tc.in, tc.q, got, tc.want)
		}
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("Quantile(nil) is not NaN")
	}
}

func TestSummarizeDoesNotReorder(t *testing.T) {
	v := []float64{3, 1, 2}
	st := Summarize(v)
	if st.Median != 2 || st.Min != 1 || st.Max != 3 || st.N != 3 {
		t.Errorf("Summarize = %+v", st)
	}
	if v[0] != 3 {
		t.Error("Summarize sorted its input in place")
	}
}

// sampleRun is a run with a little of everything the goals look at.
func sampleRun() *Run {
	r := &Run{Mode: "test"}
	add := func(sc, metric, drv, variant string, x float64, unit string, vals ...float64) {
		for i, v := range vals {
			r.Add(Sample{Scenario: sc, Metric: metric, Driver: drv, Variant: variant, X: x, Value: v, Unit: unit, Rep: i})
		}
	}
	add(Control, Run1, Bridge, "", 0, "ms", 300, 310, 320)
	add(Control, Run1, Mynet, "", 0, "ms", 305, 312, 318)
	add(Control, RunNone, None, "", 0, "ms", 200, 210)
	add(Control, Rm1, Bridge, "", 0, "ms", 100)
	add(Control, Rm1, Mynet, "", 0, "ms", 120)
	for _, n := range []float64{1, 100, 1000} {
		add(Ports, PortsRun, Bridge, Proxy, n, "ms", 300+n*20)
		add(Ports, PortsRun, Mynet, Proxy, n, "ms", 320)
		add(Ports, Rules, Mynet, Proxy, n, "rules", 4)
		add(Ports, Procs, Mynet, Proxy, n, "procs", 0)
		add(Ports, Procs, Bridge, Proxy, n, "procs", n)
	}
	add(Data, Throughput(PathC2C), Bridge, "", 0, "Gbit/s", 10, 11)
	add(Data, Throughput(PathC2C), Mynet, "", 0, "Gbit/s", 10.5, 10.9)
	add(Data, Throughput(PathVeth), Baseline, "", 0, "Gbit/s", 20)
	add(Scaling, First20, Mynet, "", 0, "ms", 300, 300)
	add(Scaling, Last20, Mynet, "", 0, "ms", 320, 320)
	add(Scaling, First20None, None, "", 0, "ms", 150, 150)
	add(Scaling, Last20None, None, "", 0, "ms", 180, 180)
	add(Scaling, OwnTime(First20), Mynet, "", 0, "ms", 2.5, 2.5)
	add(Scaling, OwnTime(Last20), Mynet, "", 0, "ms", 2.6, 2.6)
	for i := range 5 {
		r.Add(Sample{Scenario: Scaling, Metric: StartAt, Driver: Mynet, X: float64(i), Value: 300 + float64(i), Unit: "ms", PlotOnly: true})
		r.Add(Sample{Scenario: Scaling, Metric: StartAt, Driver: Bridge, X: float64(i), Value: 290 + float64(i), Unit: "ms", PlotOnly: true})
		r.Add(Sample{Scenario: Scaling, Metric: StartAt, Driver: None, X: float64(i), Value: 150 + float64(i), Unit: "ms", PlotOnly: true})
	}
	micro, _ := ParseGoBench(strings.NewReader(
		"BenchmarkAllocate/p8/fill0-2   \t 1000000\t      100.0 ns/op\t 24 B/op\n" +
			"BenchmarkAllocate/p8/fill99-2  \t 1000000\t      450 ns/op\n" +
			"BenchmarkAllocate/p8/fill99-2  \t 1000000\t      150 ns/op\n" +
			"BenchmarkAllocate/p8/fill99-2  \t 1000000\t      160 ns/op\n" +
			"ok  github.com/mynet/mynet/ipam 3.1s\n"))
	r.Add(micro...)
	return r
}

func TestGoals(t *testing.T) {
	got := map[string]Verdict{}
	for _, v := range sampleRun().Goals() {
		got[v.Goal] = v
	}
	for goal, want := range map[string]string{
		"container start (run -d) ≤ 1.05× bridge":                              Met,
		"container remove (rm -f) ≤ 1.05× bridge":                              Missed,
		"50 concurrent starts ≤ 1.05× bridge":                                  NotMeasured,
		"run -d with 1000 published ports ≥ 20× faster than bridge [proxy]":    Met,
		"constant number of rules for 1, 100, 1000 ports":                      Met,
		"no extra processes for 1000 published ports":                          Met,
		"throughput container→container ≥ 0.97× bridge":                        Met,
		"start of the last 20 containers on a /16 within 1.1× of the first 20": Met,
		"allocation in a 99%-full /8 within 2× of an empty one":                Met,
	} {
		if got[goal].Status != want {
			t.Errorf("%s: %s (%s), want %s", goal, got[goal].Status, got[goal].Detail, want)
		}
	}
	// The engine's own growth is shown next to mynet's.
	if d := got["start of the last 20 containers on a /16 within 1.1× of the first 20"].Detail; !strings.Contains(d, "--network none 150 → 180 ms (×1.200)") {
		t.Errorf("scaling detail lacks the --network none series: %s", d)
	}
	// And so is mynet's own part of a start, from its log.
	if d := got["start of the last 20 containers on a /16 within 1.1× of the first 20"].Detail; !strings.Contains(d, "mynet's own calls 2.50 → 2.60 ms (×1.040)") {
		t.Errorf("scaling detail lacks mynet's own calls: %s", d)
	}
}

func TestTableAndFiles(t *testing.T) {
	r := sampleRun()
	table := r.Table()
	for _, want := range []string{"control: run -d", "1.006", "control: run -d --network none", "scaling: start, last 20, --network none", "data: throughput veth, two netns (no Docker)", "ports/1000: run -d [proxy]"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, StartAt) {
		t.Errorf("plot-only samples in the table:\n%s", table)
	}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "samples.csv", "table.txt", "scaling.png", "ports.png"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	var parsed struct {
		Samples []Sample
		Goals   []Verdict
	}
	if err := json.Unmarshal(b, &parsed); err != nil || len(parsed.Samples) != len(r.Samples) || len(parsed.Goals) == 0 {
		t.Errorf("results.json: %v, %d samples, %d goals", err, len(parsed.Samples), len(parsed.Goals))
	}
}

func TestEmptyRunStillWritesPlots(t *testing.T) {
	if err := (&Run{}).Write(t.TempDir()); err != nil {
		t.Fatal(err)
	}
}

// spread is ten start times with the ±10–20% rep-to-rep spread of a run on
// the 2-core machine.
var spread = []float64{300, 340, 290, 360, 310, 280, 330, 350, 295, 320}

func scaled(v []float64, f float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x * f
	}
	return out
}

func TestRatioInterval(t *testing.T) {
	for _, tc := range []struct {
		name     string
		num, den []float64
		want     func(Interval) bool // nil: no interval
	}{
		{"identical distributions: around 1", spread, spread,
			func(iv Interval) bool { return iv.Lo < 1 && iv.Hi > 1 && iv.Lo > 0.8 && iv.Hi < 1.2 }},
		{"2× shift: excludes 1", scaled(spread, 2), spread,
			func(iv Interval) bool { return iv.Lo > 1.5 && iv.Hi < 2.5 }},
		{"2× faster: excludes 1", scaled(spread, 0.5), spread,
			func(iv Interval) bool { return iv.Lo > 0.4 && iv.Hi < 0.6 }},
		{"distinct values: contains the point ratio", []float64{318, 301, 352, 366, 298, 331, 344, 287, 309, 325, 340}, spread,
			func(iv Interval) bool { x := 325.0 / 315; return iv.Lo < x && x < iv.Hi }},
		{"seven mynet samples: none", spread[:7], spread, nil},
		{"seven bridge samples: none", spread, spread[:7], nil},
		{"no samples: none", nil, nil, nil},
		{"bridge median can be zero: none", spread, make([]float64, 10), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iv := RatioInterval(tc.num, tc.den)
			switch {
			case tc.want == nil && iv != nil:
				t.Errorf("interval %s, want none", span(iv))
			case tc.want != nil && (iv == nil || !tc.want(*iv)):
				t.Errorf("interval %s", span(iv))
			}
		})
	}
}

func TestRatioIntervalIsDeterministic(t *testing.T) {
	den := slices.Clone(spread)
	first := RatioInterval(scaled(spread, 1.05), den)
	again := RatioInterval(scaled(spread, 1.05), den)
	if first == nil || again == nil || *again != *first {
		t.Errorf("two calls gave %s and %s", span(first), span(again))
	}
	if !slices.Equal(den, spread) {
		t.Error("RatioInterval reordered its input")
	}
}

// drifting is twenty interleaved reps on a machine that slows down through
// the run: bridge's rep i takes 100+10i ms and mynet's 1.02 times that,
// give or take 1%, as the two were taken a second apart.
func drifting() (mynet, bridge []Sample) {
	for i := range 20 {
		b := 100 + 10*float64(i)
		jitter := 1 + 0.005*float64(i*7%5-2)
		bridge = append(bridge, Sample{Driver: Bridge, Rep: i, Value: b})
		mynet = append(mynet, Sample{Driver: Mynet, Rep: i, Value: 1.02 * b * jitter})
	}
	return mynet, bridge
}

func TestPairedIntervalRemovesDrift(t *testing.T) {
	mynet, bridge := drifting()
	paired := SampleRatioInterval(mynet, bridge)
	indep := RatioInterval(values(mynet), values(bridge))
	if paired == nil || indep == nil {
		t.Fatalf("paired %s, independent %s", span(paired), span(indep))
	}
	if !paired.Paired || indep.Paired {
		t.Errorf("paired %+v, independent %+v: Paired flags wrong", *paired, *indep)
	}
	for _, iv := range []*Interval{paired, indep} {
		if iv.Lo > 1.02 || iv.Hi < 1.02 {
			t.Errorf("interval %s excludes 1.02", span(iv))
		}
	}
	pw, iw := paired.Hi-paired.Lo, indep.Hi-indep.Lo
	t.Logf("paired %s (width %.4f), independent %s (width %.4f)", span(paired), pw, span(indep), iw)
	if pw > iw/10 {
		t.Errorf("paired width %.4f not a tenth of the independent %.4f", pw, iw)
	}
}

func TestPairedIntervalFallsBack(t *testing.T) {
	mynet, bridge := drifting()
	withRep := func(s []Sample, i, rep int) []Sample {
		s = slices.Clone(s)
		s[i].Rep = rep
		return s
	}
	noReps := func(s []Sample) []Sample {
		s = slices.Clone(s)
		for i := range s {
			s[i].Rep = 0
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		num, den []Sample
	}{
		{"a mynet rep missing", mynet[:19], bridge},
		{"a bridge rep missing", mynet, bridge[1:]},
		{"other reps", withRep(mynet, 19, 20), bridge},
		{"a rep twice on both sides", withRep(mynet, 4, 3), withRep(bridge, 4, 3)},
		{"no reps", noReps(mynet), noReps(bridge)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := SampleRatioInterval(tc.num, tc.den), RatioInterval(values(tc.num), values(tc.den))
			if (got == nil) != (want == nil) || got != nil && *got != *want {
				t.Errorf("interval %s, want the independent %s", span(got), span(want))
			}
		})
	}
	// Eight pairs or more, as for the independent bootstrap.
	if iv := SampleRatioInterval(mynet[:7], bridge[:7]); iv != nil {
		t.Errorf("seven pairs: interval %s, want none", span(iv))
	}
	if iv := SampleRatioInterval(mynet[:8], bridge[:8]); iv == nil || !iv.Paired {
		t.Errorf("eight pairs: interval %+v, want a paired one", iv)
	}
	zero := slices.Clone(bridge)
	for i := range zero {
		zero[i].Value = 0
	}
	if iv := SampleRatioInterval(mynet, zero); iv != nil {
		t.Errorf("zero bridge median: interval %s, want none", span(iv))
	}
}

func TestPairedIntervalIsDeterministic(t *testing.T) {
	mynet, bridge := drifting()
	mynet = append(mynet[10:], mynet[:10]...) // pairs by rep, not by position
	before := slices.Clone(mynet)
	first := SampleRatioInterval(mynet, bridge)
	again := SampleRatioInterval(mynet, bridge)
	inOrder, _ := drifting()
	ordered := SampleRatioInterval(inOrder, bridge)
	if first == nil || again == nil || ordered == nil || *again != *first || *ordered != *first {
		t.Errorf("calls gave %s, %s and in rep order %s", span(first), span(again), span(ordered))
	}
	if !slices.Equal(mynet, before) {
		t.Error("SampleRatioInterval reordered its input")
	}
}

// goalRun measures run -d and throughput container→container with ten
// reps per driver, mynet's being bridge's times the given factors. Mynet's
// rep i has bridge's value of rep i+3: were they in step, every pair would
// have the exact factor as its ratio and the paired interval no width.
func goalRun(start, throughput float64) *Run {
	r := &Run{Mode: "test"}
	add := func(k Key, drv, unit string, vals []float64) {
		for i, v := range vals {
			r.Add(Sample{Scenario: k.Scenario, Metric: k.Metric, Driver: drv, Value: v, Unit: unit, Rep: i})
		}
	}
	shifted := append(slices.Clone(spread[3:]), spread[:3]...)
	add(Key{Scenario: Control, Metric: Run1}, Bridge, "ms", spread)
	add(Key{Scenario: Control, Metric: Run1}, Mynet, "ms", scaled(shifted, start))
	gbit := scaled(spread, 1.0/30)
	add(Key{Scenario: Data, Metric: Throughput(PathC2C)}, Bridge, "Gbit/s", gbit)
	add(Key{Scenario: Data, Metric: Throughput(PathC2C)}, Mynet, "Gbit/s", scaled(scaled(shifted, 1.0/30), throughput))
	return r
}

func TestGoalInterval(t *testing.T) {
	const (
		start = "container start (run -d) ≤ 1.05× bridge"
		tput  = "throughput container→container ≥ 0.97× bridge"
	)
	for _, tc := range []struct {
		name          string
		run           *Run
		goal          string
		status        string
		detail, noise string // noise: "" when the interval is clear of the bar
	}{
		{"clearly met", goalRun(0.5, 1), start, Met,
			"mynet 158 ms, bridge 315 ms: ratio 0.500 (90% interval 0.456–0.557; 2.0× faster)", ""},
		{"met within noise", goalRun(1, 1), start, Met,
			"ratio 1.000 (90% interval 0.912–1.115)", "; within noise: the interval spans the bar"},
		{"missed within noise", goalRun(1.08, 1), start, Missed,
			"ratio 1.080 (90% interval 0.985–1.204)", "; within noise: the interval spans the bar"},
		{"clearly missed", goalRun(2, 1), start, Missed, "ratio 2.000 (90% interval 1.824–2.230)", ""},
		{"at least, missed within noise", goalRun(1, 0.96), tput, Missed,
			"ratio 0.960 (90% interval 0.875–1.070)", "; within noise: the interval spans the bar"},
		{"at least, clearly met", goalRun(1, 1.2), tput, Met, "ratio 1.200 (90% interval 1.094–1.338)", ""},
		{"three samples: no interval", sampleRun(), start, Met, "bridge 310 ms: ratio 1.006", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v Verdict
			for _, g := range tc.run.Goals() {
				if g.Goal == tc.goal {
					v = g
				}
			}
			if v.Status != tc.status || !strings.HasSuffix(v.Detail, tc.detail+tc.noise) {
				t.Errorf("[%s] %s, want [%s] ...%s", v.Status, v.Detail, tc.status, tc.detail+tc.noise)
			}
		})
	}
}

func TestTableShowsInterval(t *testing.T) {
	r := goalRun(1.08, 1)
	r.Add(Sample{Scenario: Control, Metric: Rm1, Driver: Bridge, Value: 100, Unit: "ms"},
		Sample{Scenario: Control, Metric: Rm1, Driver: Mynet, Value: 110, Unit: "ms"})
	table := r.Table()
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	for _, want := range []struct{ line, has string }{
		{lines[0], "mynet/bridge  90% interval"},
		{lines[1], "1.080   0.985–1.204"},
		{lines[3], "1.100             -"},
	} {
		if !strings.HasSuffix(strings.TrimRight(want.line, " "), want.has) {
			t.Errorf("line %q lacks %q:\n%s", want.line, want.has, table)
		}
	}
	for _, l := range lines {
		if utf8.RuneCountInString(l) != utf8.RuneCountInString(lines[0]) {
			t.Errorf("table not aligned:\n%s", table)
			break
		}
	}
	if !strings.Contains(r.Report(), table+intervalLegend+"\n") {
		t.Errorf("report lacks the interval's legend under the table:\n%s", r.Report())
	}
}

func TestResultsJSONHasInterval(t *testing.T) {
	dir := t.TempDir()
	r := goalRun(1.08, 1)
	r.Add(Sample{Scenario: Control, Metric: Rm1, Driver: Bridge, Value: 100, Unit: "ms"})
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	var parsed struct {
		Rows []struct {
			Label    string
			Interval *Interval `json:"ratio_interval_90"`
		}
	}
	if err := json.Unmarshal(b, &parsed); err != nil || len(parsed.Rows) != 3 {
		t.Fatalf("results.json: %v, %d rows", err, len(parsed.Rows))
	}
	if iv := parsed.Rows[0].Interval; iv == nil || span(iv) != "0.985–1.204" || !iv.Paired {
		t.Errorf("%s: interval %+v, want 0.985–1.204 paired", parsed.Rows[0].Label, iv)
	}
	if !strings.Contains(string(b), `"label": "control: rm -f",`) || strings.Count(string(b), "ratio_interval_90") != 2 {
		t.Errorf("a row without an interval has the field:\n%s", b)
	}
}
