"""The report's over-optimisation section: for each best_of_n entry and policy, the proxy and
gold rewards of best-of-N against N and KL (95% intervals), the flag of
rlhf_eval.overoptimization, and a figure that reads like Gao et al. (2022) Figure 1: reward
against sqrt(KL(best-of-N || policy)), gold solid and proxy dashed."""

from __future__ import annotations

import base64

from markupsafe import Markup
from matplotlib.figure import Figure

from rlhf_eval.overoptimization import Curve, curves, sqrt_kl
from rlhf_eval.report.plots import _png
from rlhf_eval.report.reward_model import interval_text
from rlhf_eval.report.tables import Row, markdown_table
from rlhf_eval.results import Results

COLUMNS = ("N", "KL (nats)", "proxy reward", "gold reward", "proxy gain", "gold gain")
RULE = (
    "Rewards of the completion the proxy ranks first among N samples, estimated without bias "
    "from all n samples per prompt; 95% intervals bootstrap the prompts. KL(best-of-N || "
    "policy) = log N - (N - 1)/N. Gains are from N/2 to N, paired within prompts. Flag: the "
    "first N whose proxy gain is resolved above 0 while the gold gain is not (resolved below "
    "0: over-optimised; unresolved: a plateau or too few prompts)."
)
GOLD_COLOR, PROXY_COLOR = "#1f77b4", "#ff7f0e"


def curve_rows(curve: Curve) -> list[Row]:
    return [
        {
            "N": str(p.n),
            "KL (nats)": f"{p.kl:.3f}",
            "proxy reward": interval_text(p.proxy),
            "gold reward": interval_text(p.gold),
            "proxy gain": interval_text(p.proxy_gain),
            "gold gain": interval_text(p.gold_gain),
        }
        for p in curve.points
    ]


def flag_text(curve: Curve) -> str:
    if curve.flag is None:
        return "No flag: the gold reward rises (resolved) wherever the proxy's does."
    return f"Flag at N = {curve.flag.n}: {curve.flag.text()}."


def title(curve: Curve) -> str:
    return f"{curve.model} ({curve.task}): proxy {curve.proxy_judge}, gold {curve.gold_judge}"


def curve_figure(curve: Curve) -> bytes:
    """Gold (solid, left axis) and proxy (dashed, right axis) reward against sqrt(KL), 95%
    bands, N on the top axis, the flagged N marked."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    gold_ax = fig.add_subplot(1, 1, 1)
    proxy_ax = gold_ax.twinx()
    xs = [sqrt_kl(p) for p in curve.points]
    for ax, kind, color, style in (
        (gold_ax, "gold", GOLD_COLOR, "-"),
        (proxy_ax, "proxy", PROXY_COLOR, "--"),
    ):
        estimates = [getattr(p, kind) for p in curve.points]
        ys = [e.point for e in estimates]
        ax.plot(
            xs,
            ys,
            style,
            color=color,
            marker="o",
            label=f"{kind} ({getattr(curve, kind + '_judge')})",
        )
        ax.fill_between(
            xs,
            [e.lo if e.lo is not None else e.point for e in estimates],
            [e.hi if e.hi is not None else e.point for e in estimates],
            color=color,
            alpha=0.15,
        )
        ax.set_ylabel(f"{kind} reward", color=color)
    if curve.flag is not None:
        x = next(sqrt_kl(p) for p in curve.points if p.n == curve.flag.n)
        gold_ax.axvline(x, color="#d62728", linestyle=":", label=f"flag: N = {curve.flag.n}")
    gold_ax.set_xlabel("sqrt(KL(best-of-N || policy)), nats^1/2")
    top = gold_ax.secondary_xaxis("top")
    top.set_xticks(xs, [str(p.n) for p in curve.points])
    top.set_xlabel("N")
    handles = gold_ax.get_legend_handles_labels()
    more = proxy_ax.get_legend_handles_labels()
    gold_ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize=8, loc="lower right")
    gold_ax.set_title(title(curve), fontsize=9)
    return _png(fig)


def overoptimization_markdown(results: Results) -> str:
    found = curves(results)
    if not found:
        return ""
    out = ["", "## Over-optimisation (best-of-N)", "", RULE]
    for curve in found:
        out += ["", f"### {title(curve)}", "", markdown_table(COLUMNS, curve_rows(curve))]
        out += ["", f"**{flag_text(curve)}** The figure is in report.html."]
    return "\n".join(out) + "\n"


def overoptimization_html(results: Results) -> Markup | None:
    from rlhf_eval.report.html import _environment

    found = curves(results)
    if not found:
        return None
    return Markup(
        _environment()
        .get_template("overoptimization.html.j2")
        .render(
            rule=RULE,
            columns=COLUMNS,
            curves=[
                {
                    "title": title(c),
                    "rows": curve_rows(c),
                    "flag": flag_text(c),
                    "figure": "data:image/png;base64," + base64.b64encode(curve_figure(c)).decode(),
                }
                for c in found
            ],
        )
    )
