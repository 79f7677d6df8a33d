package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// benchLine matches `go test -bench` result lines:
// "BenchmarkAllocate/p8/fill99-2   	 1000000	      1052 ns/op ...".
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op`)

// ParseGoBench reads `go test -bench` output and returns one sample per
// result line (so -count 5 gives five per benchmark), as mynet's.
func ParseGoBench(in io.Reader) ([]Sample, error) {
	var out []Sample
	rep := map[string]int{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, fmt.Errorf("parsing %q: %w", sc.Text(), err)
		}
		out = append(out, Sample{Scenario: Micro, Metric: m[1], Driver: Mynet, Value: v, Unit: "ns/op", Rep: rep[m[1]]})
		rep[m[1]]++
	}
	return out, sc.Err()
}

// Write leaves the run's files in dir: results.json (machine, notes,
// every sample, the table's rows and the goals), samples.csv, table.txt
// (what the run printed) and the plots.
func (r *Run) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	steps := []func(string) error{r.writeJSON, r.writeCSV, r.writeTable, r.PlotScaling, r.PlotPorts}
	names := []string{"results.json", "samples.csv", "table.txt", "scaling.png", "ports.png"}
	for i, step := range steps {
		if err := step(filepath.Join(dir, names[i])); err != nil {
			return fmt.Errorf("writing %s: %w", names[i], err)
		}
	}
	return nil
}

func (r *Run) writeJSON(path string) error {
	type row struct {
		Label string           `json:"label"`
		Unit  string           `json:"unit"`
		Stats map[string]Stats `json:"stats"`
		Ratio *float64         `json:"ratio_mynet_bridge,omitempty"`
		// omitempty: a row with too few samples for one reads as before.
		Interval *Interval `json:"ratio_interval_90,omitempty"`
	}
	var rows []row
	for _, w := range r.Rows() {
		rw := row{Label: w.Label(), Unit: w.Unit, Stats: w.Stats, Interval: w.Interval}
		if x := w.Ratio(); x == x { // not NaN
			rw.Ratio = &x
		}
		rows = append(rows, rw)
	}
	goals := r.Goals() // before taking the lock: Goals takes it too
	r.mu.Lock()
	b, err := json.MarshalIndent(struct {
		*Run
		Rows  []row     `json:"rows"`
		Goals []Verdict `json:"goals"`
	}{r, rows, goals}, "", "  ")
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func (r *Run) writeCSV(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"scenario", "metric", "driver", "variant", "x", "rep", "value", "unit", "plot_only"})
	r.mu.Lock()
	for _, s := range r.Samples {
		_ = w.Write([]string{s.Scenario, s.Metric, s.Driver, s.Variant, strconv.FormatFloat(s.X, 'g', -1, 64),
			strconv.Itoa(s.Rep), strconv.FormatFloat(s.Value, 'g', -1, 64), s.Unit, strconv.FormatBool(s.PlotOnly)})
	}
	r.mu.Unlock()
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (r *Run) writeTable(path string) error {
	return os.WriteFile(path, []byte(r.Report()), 0o644)
}

// Report is what a run prints: machine, table, goals and notes.
func (r *Run) Report() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "mynet benchmark (%s) %s\n", r.Mode, r.Started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "machine: %s, %d cores, %d MiB, kernel %s\n", m.CPU, m.Cores, m.MemoryMiB, m.Kernel)
	fmt.Fprintf(&b, "engine: %s (Docker %s, containerd %s, storage %s, iptables %s)\n\n", m.Engine, m.EngineVersion, m.Containerd, m.Storage, m.IptablesMode)
	b.WriteString(r.Table())
	b.WriteString(intervalLegend + "\n")
	b.WriteString("\ngoals (issue 6):\n")
	b.WriteString(GoalTable(r.Goals()))
	r.mu.Lock()
	notes := append([]string(nil), r.Notes...)
	r.mu.Unlock()
	if len(notes) > 0 {
		b.WriteString("\nnotes:\n- " + strings.Join(notes, "\n- ") + "\n")
	}
	return b.String()
}

// Load reads a run back from the results.json that Write left.
func Load(path string) (*Run, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &Run{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}
