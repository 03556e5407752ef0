// Command promql-check validates Prometheus rules and PromQL expressions with Prometheus's own
// parser (deploy/check uses it for the chart's PrometheusRule and the Grafana dashboard):
//
//	promql-check rules FILE   a rules file (`groups:`): PromQL, durations, labels, annotation templates
//	promql-check exprs FILE   one PromQL expression per line
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: promql-check rules|exprs FILE")
		os.Exit(2)
	}
	content, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	failed := 0
	switch os.Args[1] {
	case "rules":
		groups, errs := rulefmt.Parse(content, false, model.UTF8Validation)
		for _, e := range errs {
			fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[2], e)
			failed++
		}
		if failed == 0 {
			n := 0
			for _, g := range groups.Groups {
				n += len(g.Rules)
			}
			fmt.Printf("promql-check: %d rule(s) in %d group(s) valid\n", n, len(groups.Groups))
		}
	case "exprs":
		n := 0
		for i, line := range strings.Split(string(content), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			n++
			if _, err := parser.ParseExpr(line); err != nil {
				fmt.Fprintf(os.Stderr, "%s:%d: %v\n  %s\n", os.Args[2], i+1, err, line)
				failed++
			}
		}
		if failed == 0 {
			fmt.Printf("promql-check: %d expression(s) valid\n", n)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: promql-check rules|exprs FILE")
		os.Exit(2)
	}
	if failed > 0 {
		os.Exit(1)
	}
}
