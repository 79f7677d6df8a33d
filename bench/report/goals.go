package report

import (
	"fmt"
	"math"
	"strings"
)

// Scenario and metric names that the goals look up; the suite records its
// samples under them.
const (
	Control = "control"
	Ports   = "ports"
	Data    = "data"
	Scaling = "scaling"
	Micro   = "micro"

	Run1    = "run -d"
	Rm1     = "rm -f"
	Run50   = "run -d ×50 concurrent"
	Rm50    = "rm -f ×50 concurrent"
	RunNone = "run -d --network none" // driver None: the engine's floor
	RmNone  = "rm -f --network none"
	Rules   = "rules added"
	Procs   = "extra processes"
	First20 = "start, first 20"
	Last20  = "start, last 20"
	// The same for --network none (driver None), the engine's own growth.
	First20None = "start, first 20, --network none"
	Last20None  = "start, last 20, --network none"
	StartAt     = "start at endpoint count" // plot-only curve
	PortsRun    = "run -d"                  // ports scenario, X = ports

	PathC2C       = "container→container"
	PathHost      = "host→container"
	PathLoopback  = "host→127.0.0.1:published"
	PathHostAddr  = "host→198.18.0.1:published"
	PathExternal  = "ext→198.18.0.1:published"
	PathVeth      = "veth, two netns"
	PathBridgeRaw = "bridge+veth, two netns"

	AllocEmpty = "BenchmarkAllocate/p8/fill0"
	AllocFull  = "BenchmarkAllocate/p8/fill99"
)

// CPU names the CPU time who ("machine", "dockerd", "containerd", "mynet")
// spent during an operation (a start in the control or scaling phase).
func CPU(metric, who string) string { return "CPU of " + metric + ": " + who }

// OwnTime names the time mynet spent in its own handlers during an
// operation: the sum of its calls' durations, from its log.
func OwnTime(metric string) string { return "mynet's own calls in " + metric }

// Throughput and Latency name the data plane's metrics for a path.
func Throughput(path string) string { return "throughput " + path }

// Latency names a request latency percentile ("p50", "p90", "p99") over a
// persistent connection; ConnectLatency one with a new connection each.
func Latency(pct, path string) string        { return "rr " + pct + " " + path }
func ConnectLatency(pct, path string) string { return "crr " + pct + " " + path }

// Verdict is one goal of issue 6 checked against a run.
type Verdict struct {
	Goal   string `json:"goal"`
	Status string `json:"status"` // met, missed, not measured
	Detail string `json:"detail"`
}

const (
	Met         = "met"
	Missed      = "missed"
	NotMeasured = "not measured"
)

// Goals checks every goal of issue 6 that the run measured.
func (r *Run) Goals() []Verdict {
	v := []Verdict{
		r.ratioAtMost("container start (run -d) ≤ 1.05× bridge", Key{Scenario: Control, Metric: Run1}, 1.05),
		r.ratioAtMost("container remove (rm -f) ≤ 1.05× bridge", Key{Scenario: Control, Metric: Rm1}, 1.05),
		r.ratioAtMost("50 concurrent starts ≤ 1.05× bridge", Key{Scenario: Control, Metric: Run50}, 1.05),
		r.ratioAtMost("50 concurrent removes ≤ 1.05× bridge", Key{Scenario: Control, Metric: Rm50}, 1.05),
	}
	for _, variant := range []string{Proxy, NoProxy} {
		v = append(v, r.ratioAtMost("run -d with 1000 published ports ≥ 20× faster than bridge ["+variant+"]",
			Key{Scenario: Ports, Metric: PortsRun, Variant: variant, X: 1000}, 1.0/20))
	}
	v = append(v, r.constantRules(), r.noExtraProcesses(),
		r.ratioAtLeast("throughput container→container ≥ 0.97× bridge", Key{Scenario: Data, Metric: Throughput(PathC2C)}, 0.97),
		r.ratioAtLeast("throughput host→container ≥ 0.97× bridge", Key{Scenario: Data, Metric: Throughput(PathHost)}, 0.97),
		r.ratioAtLeast("throughput to 127.0.0.1 published port ≥ bridge without userland proxy",
			Key{Scenario: Data, Metric: Throughput(PathLoopback), Variant: NoProxy}, 1.0),
		r.scalingGoal(), r.allocationGoal())
	return v
}

func (r *Run) ratioAtMost(goal string, k Key, limit float64) Verdict {
	return r.ratioGoal(goal, k, func(x float64) bool { return x <= limit })
}

func (r *Run) ratioAtLeast(goal string, k Key, limit float64) Verdict {
	return r.ratioGoal(goal, k, func(x float64) bool { return x >= limit })
}

func (r *Run) ratioGoal(goal string, k Key, ok func(float64) bool) Verdict {
	row := r.Row(k)
	x := row.Ratio()
	if math.IsNaN(x) {
		return Verdict{goal, NotMeasured, row.Label()}
	}
	detail := ratioDetail(row, x)
	if spansBar(row.Interval, ok, ok(x)) {
		detail += "; within noise: the interval spans the bar"
	}
	return Verdict{goal, status(ok(x)), detail}
}

// ratioDetail reads "mynet 171 ms, bridge 204 ms: ratio 0.838 (90% interval
// 0.561–0.930; 1.2× faster)"; "faster" is left out for throughputs.
func ratioDetail(row Row, x float64) string {
	b, m := row.Stats[Bridge], row.Stats[Mynet]
	detail := fmt.Sprintf("mynet %s %s, bridge %s %s: ratio %.3f", Format(m.Median), row.Unit, Format(b.Median), row.Unit, x)
	var notes []string
	if row.Interval != nil {
		notes = append(notes, "90% interval "+span(row.Interval))
	}
	if x < 1 && !strings.HasPrefix(row.Unit, "Gbit") {
		notes = append(notes, fmt.Sprintf("%.1f× faster", 1/x))
	}
	if len(notes) == 0 {
		return detail
	}
	return detail + " (" + strings.Join(notes, "; ") + ")"
}

// spansBar tells whether an end of the interval falls on the other side of
// the goal's bar from the point ratio, met being the point ratio's verdict.
// The status stays the point ratio's: readers of results.json and older
// runs know only met, missed and not measured; the detail says how sure
// the verdict is.
func spansBar(iv *Interval, ok func(float64) bool, met bool) bool {
	return iv != nil && (ok(iv.Lo) != met || ok(iv.Hi) != met)
}

// constantRules: mynet's rules added for 1000 ports equal those for 1.
func (r *Run) constantRules() Verdict {
	const goal = "constant number of rules for 1, 100, 1000 ports"
	var counts []string
	var first, last Stats
	for i, n := range []float64{1, 100, 1000} {
		st := r.Row(Key{Scenario: Ports, Metric: Rules, Variant: Proxy, X: n}).Stats[Mynet]
		if st.N == 0 {
			return Verdict{goal, NotMeasured, fmt.Sprintf("no mynet rule count at %g ports", n)}
		}
		counts = append(counts, fmt.Sprintf("%g ports: %s", n, Format(st.Median)))
		if i == 0 {
			first = st
		}
		last = st
	}
	return Verdict{goal, status(last.Max == first.Min && first.Max == last.Min), "mynet rules added, " + strings.Join(counts, ", ")}
}

// noExtraProcesses: no process is started for mynet's 1000 ports.
func (r *Run) noExtraProcesses() Verdict {
	const goal = "no extra processes for 1000 published ports"
	st := r.Row(Key{Scenario: Ports, Metric: Procs, Variant: Proxy, X: 1000}).Stats[Mynet]
	if st.N == 0 {
		return Verdict{goal, NotMeasured, ""}
	}
	b := r.Row(Key{Scenario: Ports, Metric: Procs, Variant: Proxy, X: 1000}).Stats[Bridge]
	return Verdict{goal, status(st.Max == 0), fmt.Sprintf("mynet %s, bridge with userland proxy %s", Format(st.Max), Format(b.Median))}
}

// scalingGoal: mynet's last 20 starts of the scaling run within 1.1× of its first 20.
func (r *Run) scalingGoal() Verdict {
	const goal = "start of the last 20 containers on a /16 within 1.1× of the first 20"
	f := r.Row(Key{Scenario: Scaling, Metric: First20}).Stats
	l := r.Row(Key{Scenario: Scaling, Metric: Last20}).Stats
	if f[Mynet].N == 0 || l[Mynet].N == 0 {
		return Verdict{goal, NotMeasured, ""}
	}
	x := l[Mynet].Median / f[Mynet].Median
	detail := fmt.Sprintf("mynet %s → %s ms (×%.3f)", Format(f[Mynet].Median), Format(l[Mynet].Median), x)
	if f[Bridge].N > 0 && l[Bridge].N > 0 {
		detail += fmt.Sprintf("; bridge %s → %s ms (×%.3f)", Format(f[Bridge].Median), Format(l[Bridge].Median), l[Bridge].Median/f[Bridge].Median)
	}
	fn := r.Row(Key{Scenario: Scaling, Metric: First20None}).Stats[None]
	ln := r.Row(Key{Scenario: Scaling, Metric: Last20None}).Stats[None]
	if fn.N > 0 && ln.N > 0 {
		detail += fmt.Sprintf("; --network none %s → %s ms (×%.3f)", Format(fn.Median), Format(ln.Median), ln.Median/fn.Median)
	}
	fo := r.Row(Key{Scenario: Scaling, Metric: OwnTime(First20)}).Stats[Mynet]
	lo := r.Row(Key{Scenario: Scaling, Metric: OwnTime(Last20)}).Stats[Mynet]
	if fo.N > 0 && lo.N > 0 {
		detail += fmt.Sprintf("; mynet's own calls %s → %s ms (×%.3f)", Format(fo.Median), Format(lo.Median), lo.Median/fo.Median)
	}
	return Verdict{goal, status(x <= 1.1), detail}
}

// allocationGoal: allocation in a 99%-full /8 within 2× of an empty one.
func (r *Run) allocationGoal() Verdict {
	const goal = "allocation in a 99%-full /8 within 2× of an empty one"
	e := Summarize(r.Select(Key{Scenario: Micro, Metric: AllocEmpty}, Mynet))
	f := Summarize(r.Select(Key{Scenario: Micro, Metric: AllocFull}, Mynet))
	if e.N == 0 || f.N == 0 {
		return Verdict{goal, NotMeasured, "no micro-benchmark results (make bench runs them first)"}
	}
	x := f.Median / e.Median
	return Verdict{goal, status(x <= 2), fmt.Sprintf("%s ns/op empty, %s ns/op 99%% full: ×%.2f", Format(e.Median), Format(f.Median), x)}
}

func status(ok bool) string {
	if ok {
		return Met
	}
	return Missed
}

// GoalTable renders verdicts one a line.
func GoalTable(v []Verdict) string {
	var b strings.Builder
	for _, g := range v {
		fmt.Fprintf(&b, "%-13s %s: %s\n", "["+g.Status+"]", g.Goal, g.Detail)
	}
	return b.String()
}
