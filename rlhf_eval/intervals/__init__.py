"""The coverage simulations of the interval methods in rlhf_common.stats and rlhf_common.intervals
(simulation: the data sets the coverage table and tests draw); they call rlhf_eval's metrics, so
they stay on the evaluation side."""
