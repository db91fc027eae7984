"""Text metrics as pure functions: DROP, SQuAD v2, corpus BLEU and ROUGE-L."""
