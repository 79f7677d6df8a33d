// Command render prints a benchmark run's report again and redraws its
// table and plots from the results.json the suite left in the run's
// directory, e.g. after a change to the report's layout:
//
//	go run ./bench/render bench/out/latest-stable
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mynet/mynet/bench/report"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: render RUN_DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	r, err := report.Load(filepath.Join(dir, "results.json"))
	if err == nil {
		err = r.Write(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	fmt.Print(r.Report())
}
