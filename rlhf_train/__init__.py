"""rlhf-train: SFT, reward-model and PPO-ptx recipes (InstructGPT section 3.5)."""
