package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// Row is one line of the table: a metric's stats per driver.
type Row struct {
	Key
	Unit     string
	Stats    map[string]Stats // by driver
	Interval *Interval        // of Ratio; nil when too few samples; see SampleRatioInterval
}

// Ratio is mynet's median over bridge's, NaN when either is missing or
// bridge's is zero.
func (w Row) Ratio() float64 {
	b, m := w.Stats[Bridge], w.Stats[Mynet]
	if b.N == 0 || m.N == 0 || b.Median == 0 {
		return math.NaN()
	}
	return m.Median / b.Median
}

// Label names the row: "scenario/X: metric [variant]".
func (w Row) Label() string {
	s := w.Scenario
	if w.X != 0 {
		s += fmt.Sprintf("/%g", w.X)
	}
	s += ": " + w.Metric
	if w.Variant != "" {
		s += " [" + w.Variant + "]"
	}
	return s
}

// Rows returns the table's rows in the order the scenarios ran.
func (r *Run) Rows() []Row {
	var rows []Row
	for _, k := range r.Keys() {
		rows = append(rows, r.row(k))
	}
	return rows
}

// Row returns the row for k, or one with no stats. It computes only that
// row: each goal asks for one, and a row's bootstrap is not free.
func (r *Run) Row(k Key) Row {
	if !slices.Contains(r.Keys(), k) {
		return Row{Key: k, Stats: map[string]Stats{}}
	}
	return r.row(k)
}

func (r *Run) row(k Key) Row {
	row := Row{Key: k, Unit: r.Unit(k), Stats: map[string]Stats{}}
	for _, d := range []string{Bridge, Mynet, None, Baseline} {
		if st := Summarize(r.Select(k, d)); st.N > 0 {
			row.Stats[d] = st
		}
	}
	row.Interval = SampleRatioInterval(r.SelectSamples(k, Mynet), r.SelectSamples(k, Bridge))
	return row
}

// intervalLegend, printed under the table, says what its last column is;
// whether a row was paired is in results.json, the column kept narrow.
const intervalLegend = "90% interval: bootstrap of the ratio of medians, paired by repetition where both drivers have the same repetitions"

// Table renders the rows as aligned text: bridge and mynet medians and
// p90s, the ratio mynet/bridge and its 90% interval. A row measured for
// another driver only (the --network none floor, the no-Docker baseline)
// shows it in the bridge columns with the driver named in the label.
func (r *Run) Table() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	rows := r.Rows()
	width := len("metric")
	for _, row := range rows {
		width = max(width, utf8.RuneCountInString(rowLabel(row)))
	}
	fmt.Fprintf(tw, "%-*s\tunit\tn\tbridge med\tbridge p90\tmynet med\tmynet p90\tmynet/bridge\t90%% interval\t\n", width, "metric")
	for _, row := range rows {
		fmt.Fprintln(tw, tableLine(row, width))
	}
	_ = tw.Flush()
	return b.String()
}

// reference is the stats shown in the bridge columns: bridge's, or for a
// row without bridge the --network none floor or the no-Docker baseline.
func reference(row Row) Stats {
	if st, ok := row.Stats[Bridge]; ok {
		return st
	}
	if st, ok := row.Stats[None]; ok {
		return st
	}
	return row.Stats[Baseline]
}

func rowLabel(row Row) string {
	if _, ok := row.Stats[Bridge]; !ok {
		if _, ok := row.Stats[Baseline]; ok {
			return row.Label() + " (no Docker)"
		}
	}
	return row.Label()
}

func tableLine(row Row, width int) string {
	left, right := reference(row), row.Stats[Mynet]
	n := max(left.N, right.N)
	label := rowLabel(row)
	label += strings.Repeat(" ", width-utf8.RuneCountInString(label))
	return strings.Join([]string{label, row.Unit, fmt.Sprint(n),
		num(left, left.Median), num(left, left.P90), num(right, right.Median), num(right, right.P90),
		ratio(row.Ratio()), span(row.Interval), ""}, "\t")
}

func num(st Stats, v float64) string {
	if st.N == 0 {
		return "-"
	}
	return Format(v)
}

func ratio(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

// Format prints a value with about three significant digits.
func Format(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}
