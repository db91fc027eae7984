"""The report's over-optimisation section: for each best_of_n entry and policy, the proxy and
gold rewards of best-of-N against N and KL (95% intervals), the flag of
rlhf_eval.overoptimization, and a figure that reads like Gao et al. (2022) Figure 1: the gain in
reward over the policy itself (best-of-1) against sqrt(KL(best-of-N || policy)), gold solid
and proxy dashed.

Everything comes from results.json: the levels and the step gains are the task's metrics, the
gains over best-of-1 (per-prompt differences bootstrapped over prompts) were computed at
aggregation (rlhf_eval/diagnostics/best_of_n.py)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from markupsafe import Markup
from matplotlib.figure import Figure

from rlhf_eval.markdown_tables import Row, markdown_table
from rlhf_eval.overoptimization import Curve, curves, sqrt_kl
from rlhf_eval.report.html import jinja_environment
from rlhf_eval.report.plots import _png
from rlhf_eval.report.reward_model import interval_text
from rlhf_eval.results import EstimateRecord, Results

COLUMNS = (
    "N",
    "KL (nats)",
    "proxy reward",
    "gold reward",
    "proxy gain over N/2",
    "gold gain over N/2",
    "proxy gain over N = 1",
    "gold gain over N = 1",
)
RULE = (
    "Rewards of the completion the proxy ranks first among N samples, estimated without bias "
    "from all n samples per prompt; 95% intervals bootstrap the prompts. KL(best-of-N || "
    "policy) = log N - (N - 1)/N. Gains are per-prompt differences (from N/2, and from the "
    "policy's own samples, N = 1). Flag: the first N whose proxy gain over N/2 is resolved "
    "above 0 while the gold gain is not (resolved below 0: over-optimised; unresolved: a "
    "plateau, or too few prompts to tell); and the first N whose gold gain is resolved below 0 "
    "while the proxy's is resolved above it."
)
GOLD_COLOR, PROXY_COLOR = "#1f77b4", "#ff7f0e"


@dataclass(frozen=True)
class CurveView:
    curve: Curve
    gains: dict[str, list[EstimateRecord]]
    """Per kind (proxy, gold), the gain over best-of-1 at each N of the curve."""


def curve_views(results: Results) -> list[CurveView]:
    """Each curve of the run with its stored gains over best-of-1 (n/a where the run was
    aggregated before they were stored)."""
    stored = {(g.task, g.model): g for g in results.best_of_n_gains}
    views = []
    for curve in curves(results):
        found = stored.get((curve.task, curve.model))
        missing = EstimateRecord(point=None, lo=None, hi=None, n=0, method="not stored")
        gains = {
            kind: [
                getattr(found, kind)[found.ns.index(p.n)]
                if found is not None and p.n in found.ns
                else missing
                for p in curve.points
            ]
            for kind in ("proxy", "gold")
        }
        views.append(CurveView(curve, gains))
    return views


def curve_rows(view: CurveView) -> list[Row]:
    return [
        {
            "N": str(p.n),
            "KL (nats)": f"{p.kl:.3f}",
            "proxy reward": interval_text(p.proxy),
            "gold reward": interval_text(p.gold),
            "proxy gain over N/2": interval_text(p.proxy_gain),
            "gold gain over N/2": interval_text(p.gold_gain),
            "proxy gain over N = 1": interval_text(proxy) if p.n > 1 else "n/a",
            "gold gain over N = 1": interval_text(gold) if p.n > 1 else "n/a",
        }
        for p, proxy, gold in zip(
            view.curve.points, view.gains["proxy"], view.gains["gold"], strict=True
        )
    ]


def flag_text(curve: Curve) -> str:
    if curve.flag is None:
        text = "No flag: the gold reward rises (resolved) wherever the proxy's does."
    else:
        text = f"Flag at N = {curve.flag.n}: {curve.flag.text()}."
    if curve.decline is not None and (curve.flag is None or not curve.flag.gold_falls):
        text += (
            f" The gold reward falls (resolved) from best-of-{curve.decline // 2} to "
            f"best-of-{curve.decline} while the proxy's still rises: over-optimised."
        )
    elif curve.decline is None:
        text += " The gold reward never falls resolvedly while the proxy's rises."
    return text + f" Gold peaks (point estimate) at N = {curve.peak}."


def title(curve: Curve) -> str:
    return f"{curve.model} ({curve.task}): proxy {curve.proxy_judge}, gold {curve.gold_judge}"


def curve_figure(view: CurveView) -> bytes:
    """Gold (solid, left axis) and proxy (dashed, right axis) gain over best-of-1 against
    sqrt(KL), 95% bands, zero at the same height on both axes, N on the top axis, the flagged
    N marked."""
    curve = view.curve
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    gold_ax = fig.add_subplot(1, 1, 1)
    proxy_ax = gold_ax.twinx()
    xs = [sqrt_kl(p) for p in curve.points]
    for ax, kind, color, style in (
        (gold_ax, "gold", GOLD_COLOR, "-"),
        (proxy_ax, "proxy", PROXY_COLOR, "--"),
    ):
        estimates = view.gains[kind]
        ys = [e.point or 0.0 for e in estimates]
        judge = getattr(curve, f"{kind}_judge")
        ax.plot(xs, ys, style, color=color, marker="o", label=f"{kind} ({judge})")
        ax.fill_between(
            xs,
            [e.lo if e.lo is not None else y for e, y in zip(estimates, ys, strict=True)],
            [e.hi if e.hi is not None else y for e, y in zip(estimates, ys, strict=True)],
            color=color,
            alpha=0.15,
        )
        ax.set_ylabel(f"{kind} reward gain over best-of-1", color=color)
        low, high = ax.get_ylim()
        span = max(abs(low), abs(high))
        ax.set_ylim(-span, span)  # zero in the middle of both axes
    gold_ax.axhline(0.0, color="#999999", linewidth=0.8)
    if curve.flag is not None:
        x = next(sqrt_kl(p) for p in curve.points if p.n == curve.flag.n)
        gold_ax.axvline(x, color="#d62728", linestyle=":", label=f"flag: N = {curve.flag.n}")
    if curve.decline is not None and (curve.flag is None or curve.decline != curve.flag.n):
        x = next(sqrt_kl(p) for p in curve.points if p.n == curve.decline)
        gold_ax.axvline(
            x, color="#7f0000", linestyle="--", label=f"gold falls: N = {curve.decline}"
        )
    gold_ax.set_xlabel("sqrt(KL(best-of-N || policy)), nats^1/2")
    top = gold_ax.secondary_xaxis("top")
    top.set_xticks(xs, [str(p.n) for p in curve.points])
    top.set_xlabel("N")
    handles, labels = gold_ax.get_legend_handles_labels()
    more_handles, more_labels = proxy_ax.get_legend_handles_labels()
    gold_ax.legend(handles + more_handles, labels + more_labels, fontsize=8, loc="lower left")
    gold_ax.set_title(title(curve), fontsize=9)
    return _png(fig)


def overoptimization_markdown(views: list[CurveView]) -> str:
    if not views:
        return ""
    out = ["", "## Over-optimisation (best-of-N)", "", RULE]
    for view in views:
        out += ["", f"### {title(view.curve)}", "", markdown_table(COLUMNS, curve_rows(view))]
        out += ["", f"**{flag_text(view.curve)}** The figure is in report.html."]
    return "\n".join(out) + "\n"


def overoptimization_html(views: list[CurveView]) -> Markup | None:
    if not views:
        return None
    return Markup(
        jinja_environment()
        .get_template("overoptimization.html.j2")
        .render(
            rule=RULE,
            columns=COLUMNS,
            curves=[
                {
                    "title": title(v.curve),
                    "rows": curve_rows(v),
                    "flag": flag_text(v.curve),
                    "figure": "data:image/png;base64," + base64.b64encode(curve_figure(v)).decode(),
                }
                for v in views
            ],
        )
    )
