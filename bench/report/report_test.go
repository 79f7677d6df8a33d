package report

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
