"""The interval methods behind `rlhf_common.stats`, one concept per module: resampling (bootstrap
replicates), bootstrap (intervals and p-values read off replicates), binomial (one proportion),
paired_binary (two models' 0/1 scores on the same items) and trust (when no method holds its
level). Their coverage simulations live in rlhf_eval.intervals.simulation."""
