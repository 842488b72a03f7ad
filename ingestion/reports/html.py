"""The finance report as one self-contained HTML file: inline SVG and CSS, nothing fetched."""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac")  # fmt: skip
WIDTH, HEIGHT, PAD = 920, 320, 48


def _money(value: Any) -> str:
    return f"${Decimal(value or 0):,.2f}"


def _chart(daily_by_model: list[dict[str, Any]]) -> str:
    days = sorted({row["day"] for row in daily_by_model})
    if not days:
        return "<p>No costs in this window.</p>"
    models = sorted({row["model"] for row in daily_by_model})
    colour = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}
    per_day: dict[date, dict[str, Decimal]] = defaultdict(dict)
    for row in daily_by_model:
        per_day[row["day"]][row["model"]] = Decimal(row["cost_usd"] or 0)
    totals = [sum(per_day[d].values(), Decimal(0)) for d in days]
    cumulative, running = [], Decimal(0)
    for total in totals:
        running += total
        cumulative.append(running)
    top = max(max(totals), Decimal("0.000001"))
    top_cumulative = max(cumulative[-1], Decimal("0.000001"))
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    slot = plot_w / len(days)
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-label="daily cost by model, with the cumulative cost">'
    ]
    for i, day in enumerate(days):
        y = HEIGHT - PAD
        for model in models:
            value = per_day[day].get(model, Decimal(0))
            height = float(value / top) * plot_h
            if height <= 0:
                continue
            y -= height
            title = html.escape(f"{day} {model}: {_money(value)}")
            parts.append(
                f'<rect x="{PAD + i * slot + 1:.1f}" y="{y:.1f}" '
                f'width="{max(slot - 2, 1):.1f}" height="{height:.1f}" '
                f'fill="{colour[model]}"><title>{title}</title></rect>'
            )
    points = " ".join(
        f"{PAD + (i + 0.5) * slot:.1f},{HEIGHT - PAD - float(c / top_cumulative) * plot_h:.1f}"
        for i, c in enumerate(cumulative)
    )
    parts.append(
        f'<polyline points="{points}" fill="none" stroke="#222" stroke-width="2">'
        f"<title>cumulative: {_money(cumulative[-1])}</title></polyline>"
    )
    parts.append(
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#888"/>'
    )
    parts.append(f'<text x="{PAD}" y="{PAD - 12}" class="axis">max day {_money(top)}</text>')
    parts.append(
        f'<text x="{WIDTH - PAD}" y="{PAD - 12}" class="axis" text-anchor="end">'
        f"cumulative {_money(cumulative[-1])}</text>"
    )
    parts.append(f'<text x="{PAD}" y="{HEIGHT - PAD + 18}" class="axis">{days[0]}</text>')
    parts.append(
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 18}" class="axis" '
        f'text-anchor="end">{days[-1]}</text>'
    )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{colour[m]}"></i>{html.escape(m)}</span>'
        for m in models
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def _table(title: str, rows: list[dict[str, Any]], key: str, limit: int = 10) -> str:
    body = "".join(
        f"<tr><td>{html.escape(str(r.get(key) or '(none)'))}</td><td>{r['requests']:,}</td>"
        f"<td>{_money(r['cost_usd'])}</td><td>{html.escape(r['pricing_status'])}</td></tr>"
        for r in rows[:limit]
    )
    return (
        f"<h2>{html.escape(title)}</h2><table><tr><th>{html.escape(key)}</th>"
        f"<th>requests</th><th>cost</th><th>pricing</th></tr>{body}</table>"
    )


def render_report(
    *,
    title: str,
    mode: str,
    daily_by_model: list[dict[str, Any]],
    projects: list[dict[str, Any]],
    sessions: list[dict[str, Any]],
    sources: list[dict[str, Any]] | None = None,
    unpriced: list[dict[str, Any]],
    generated_at: str,
) -> str:
    total = sum((Decimal(r["cost_usd"] or 0) for r in daily_by_model), Decimal(0))
    if unpriced:
        items = "".join(
            f"<li><b>{html.escape(u['model'])}</b> ({html.escape(u['provider'])}): "
            f"{u['requests']:,} requests, {u['tokens']:,} tokens without a price - "
            f"{html.escape(u['unpriced_reason'] or '')}</li>"
            for u in unpriced
        )
        callout = (
            '<div class="warn"><h2>Unpriced usage (not included in the totals)</h2>'
            f"<ul>{items}</ul><p>Add a price with <code>tally prices set</code> and "
            "re-materialise the affected days.</p></div>"
        )
    else:
        callout = '<p class="ok">Every request in this window has a price.</p>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 980px;
       color: #222; }}
h1 {{ margin-bottom: .2rem; }} .meta {{ color: #666; }}
svg {{ width: 100%; height: auto; background: #fafafa; border: 1px solid #eee; }}
.axis {{ font-size: 11px; fill: #555; }}
.legend .key {{ display: inline-block; margin: .3rem .8rem 0 0; font-size: 12px; }}
.legend i {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 1rem; }}
th, td {{ text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee; }}
td:nth-child(2), td:nth-child(3) {{ text-align: right; font-variant-numeric: tabular-nums; }}
.warn {{ background: #fff4e5; border-left: 4px solid #f28e2b; padding: .5rem 1rem; }}
.ok {{ color: #3a7d44; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="meta">Total {_money(total)} &middot; cost mode {html.escape(mode)} &middot;
generated {html.escape(generated_at)} by tally</p>
<h2>Daily cost by model</h2>{_chart(daily_by_model)}
{callout}
{_table("By tool", sources or [], "source") if sources else ""}
{_table("Top projects", projects, "project")}
{_table("Top sessions", sessions, "session_id")}
</body></html>
"""
