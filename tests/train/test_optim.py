"""The recipes' AdamW: fused on CPU, the same update as torch's default implementation."""

from __future__ import annotations

import torch

from rlhf_train.optim import adamw


def test_fused_on_cpu_and_same_step_as_the_default_implementation():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(8, 4), torch.nn.Linear(8, 4)
    b.load_state_dict(a.state_dict())
    ours = adamw(a.parameters(), lr=1e-2, weight_decay=0.1)
    reference = torch.optim.AdamW(b.parameters(), lr=1e-2, weight_decay=0.1, foreach=False)
    assert ours.param_groups[0]["fused"] is True
    x = torch.randn(16, 8)
    for _ in range(3):
        for model, optimizer in ((a, ours), (b, reference)):
            optimizer.zero_grad()
            model(x).pow(2).mean().backward()
            optimizer.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


def test_parameter_groups_keep_their_learning_rates():
    policy, value = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    optimizer = adamw(
        [{"params": policy.parameters(), "lr": 1e-5}, {"params": value.parameters(), "lr": 3e-5}],
        lr=1e-5,
    )
    assert [g["lr"] for g in optimizer.param_groups] == [1e-5, 3e-5]
    assert all(g["fused"] for g in optimizer.param_groups)


def test_a_device_without_the_fused_kernel_gets_the_default_implementation():
    on_meta = torch.nn.Parameter(torch.zeros(2, device="meta"))
    assert adamw([on_meta], lr=1e-3).param_groups[0]["fused"] is None
    assert adamw([torch.nn.Parameter(torch.zeros(2))], lr=1e-3).param_groups[0]["fused"] is True
