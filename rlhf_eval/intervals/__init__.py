"""The interval methods behind `rlhf_eval.stats`, one concept per module: resampling (bootstrap
replicates), bootstrap (intervals and p-values read off replicates), binomial (one proportion),
paired_binary (two models' 0/1 scores on the same items), trust (when no method holds its
level) and simulation (the data sets the coverage table and tests draw)."""
