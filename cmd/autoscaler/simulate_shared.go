package main

import (
	"fmt"
	"io"

	"github.com/hodei/hodei-autoscaler/internal/config"
	"github.com/hodei/hodei-autoscaler/internal/engine"
	"github.com/hodei/hodei-autoscaler/internal/policy"
	"github.com/hodei/hodei-autoscaler/internal/sim"
)

// sharedRun is the trace replayed once more with every pool in one
// engine, when the config has budgets or tiers (docs/simulator.md).
type sharedRun struct {
	rep     *sim.SharedReport
	budgets []policy.Budget
}

// runShared replays the trace with every pool in one engine when the
// config has budgets or tiers (nil otherwise, or with --json and no plot:
// the shared report is text and charts).
func runShared(cfg config.Config, pools []engine.PoolConfig, tr *sim.Trace, f simFlags) (*sharedRun, error) {
	shared := len(cfg.Budgets) > 0
	for _, p := range pools {
		shared = shared || len(p.Tiers) > 0
	}
	if !shared || (f.asJSON && f.plot == "") {
		return nil, nil
	}
	budgets := cfg.EngineBudgets()
	rep, err := sim.SimulateShared(sim.SharedOptions{Trace: tr, Pools: pools, Budgets: budgets, Boot: f.prov.Median})
	if err != nil {
		return nil, err
	}
	return &sharedRun{rep: rep, budgets: budgets}, nil
}

// charts are the budgets' charts for the main plot: each pool's workers
// and jobs, the budget's use over all pools, and the budget as its line.
func (s *sharedRun) charts(tr *sim.Trace, pools []engine.PoolConfig) []sim.PlotChart {
	if s == nil {
		return nil
	}
	return s.rep.Charts(tr.Start, pools, s.budgets)
}

// write writes the shared run's report per pool and tier, the budgets'
// peaks and the fairness (not with --json).
func (s *sharedRun) write(f simFlags, stdout io.Writer) error {
	if s == nil || f.asJSON {
		return nil
	}
	if _, err := fmt.Fprintf(stdout, "\n## All pools in one engine: budgets and tiers (boot %s)\n\n```\n", f.prov.Median); err != nil {
		return err
	}
	if err := s.rep.WriteText(stdout); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, "```")
	return err
}
