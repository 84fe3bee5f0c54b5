package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/sim"
)

// simulateShared replays the trace once more with every pool in one
// engine when the config has budgets or tiers (docs/simulator.md): the
// report per pool and tier, the budgets' peaks and the fairness; with
// --plot, the budgets' chart (the budget as its line) beside the plot.
func simulateShared(cfg config.Config, pools []engine.PoolConfig, tr *sim.Trace, f simFlags, stdout io.Writer) error {
	shared := len(cfg.Budgets) > 0
	for _, p := range pools {
		shared = shared || len(p.Tiers) > 0
	}
	if !shared || f.asJSON {
		return nil
	}
	budgets := cfg.EngineBudgets()
	rep, err := sim.SimulateShared(sim.SharedOptions{Trace: tr, Pools: pools, Budgets: budgets, Boot: f.prov.Median})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "\n## All pools in one engine: budgets and tiers (boot %s)\n\n```\n", f.prov.Median); err != nil {
		return err
	}
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, "```"); err != nil {
		return err
	}
	if f.plot == "" || len(budgets) == 0 {
		return nil
	}
	path := strings.TrimSuffix(f.plot, ".svg") + "-budget.svg"
	if err := writeFile(path, func(w io.Writer) error { return sim.WritePlot(w, rep.Charts(tr.Start, pools, budgets)) }); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "\nBudget plot: %s\n", path)
	return err
}
