"""What rlhf_eval and rlhf_train both use, so that neither imports the other: the user-error
base classes, the instruction-data formats, data-file reading, model aliases, the reward head's
stored bias, the TruthfulQA judges' data rows and the interval statistics."""
