"""Hub datasets on a machine without network: one quick probe, then DataUnavailable at once."""

from __future__ import annotations

import socket

import pytest

from rlhf_common import datasets as data
from rlhf_eval.errors import DataUnavailable


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    data.hub_unreachable.cache_clear()
    yield
    data.hub_unreachable.cache_clear()


def refuse(calls: list):
    def connect(address, timeout=None):
        calls.append((address, timeout))
        raise OSError("Name or service not known")

    return connect


def test_unreachable_hub_fails_fast_without_calling_the_hub_client(monkeypatch):
    calls: list = []
    monkeypatch.setattr(socket, "create_connection", refuse(calls))
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example:8443")
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("hub called"))
    for _ in range(2):  # probed once per process, not once per dataset
        with pytest.raises(DataUnavailable, match=r"hub\.example:8443\) is out of reach"):
            data.load_hub("cais/mmlu", "all", "test")
    assert calls == [(("hub.example", 8443), data.HUB_PROBE_TIMEOUT_S)]


def test_offline_mode_skips_the_probe_and_reads_the_local_cache(monkeypatch):
    calls: list = []
    monkeypatch.setattr(socket, "create_connection", refuse(calls))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: [{"question": "cached"}])
    assert data.load_hub("cais/mmlu", "all", "test") == [{"question": "cached"}]
    assert calls == []


def test_reachable_hub_goes_on_to_the_hub_client(monkeypatch):
    class Connection:
        def close(self) -> None:
            pass

    monkeypatch.setattr(socket, "create_connection", lambda address, timeout=None: Connection())
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: [{"row": 1}])
    assert data.load_hub("x/y", None, "train") == [{"row": 1}]
