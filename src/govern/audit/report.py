"""``report.html``: one self-contained page for a compliance officer.

No scripts, no external fonts, styles or images: inline CSS and SVG charts drawn here, so
the page opens offline in any browser and prints cleanly. Every value is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from govern.audit.sections import NOT_AVAILABLE, Chart, Section

_W, _H = 640, 240
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 48, 16, 16, 56
_COLOURS = ("#2f6db5", "#d9822b", "#3a9a5b", "#b03a48")

_CSS = "".join(
    (
        'body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;color:#1d2733;',
        "margin:0;background:#f4f6f9}",
        "main{max-width:960px;margin:0 auto;padding:24px 32px 48px;background:#fff}",
        "h1{font-size:26px;margin:0 0 4px}",
        "h2{font-size:19px;margin:32px 0 8px;border-bottom:2px solid #dde4ee;padding-bottom:4px}",
        ".meta{color:#56616f;font-size:14px;margin:0 0 16px}",
        ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}",
        ".card{flex:1 1 150px;border:1px solid #dde4ee;border-radius:8px;",
        "padding:12px 14px;background:#f9fbfd}",
        ".card .v{font-size:26px;font-weight:bold}",
        ".card .l{font-size:13px;color:#56616f}",
        ".na{color:#8a5a00;background:#fff6e0;border-left:4px solid #e0a800;",
        "padding:8px 12px;margin:8px 0;font-size:14px}",
        "ul{margin:6px 0 6px 20px;padding:0}",
        "li{margin:2px 0;font-size:14px}",
        "svg{display:block;margin:8px 0}",
        "footer{margin-top:32px;color:#56616f;font-size:12px}",
    )
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _nice_max(value: float) -> float:
    """A round axis top above ``value`` whose quarters are whole numbers."""
    if value <= 0:
        return 4.0
    step = 10 ** max(len(str(int(value * 1.1 / 4))) - 1, 0)
    return float(math.ceil(value * 1.1 / 4 / step) * step * 4)


def svg_chart(chart: Chart) -> str:
    """An inline SVG bar or line chart with axes, gridlines, labels and a title."""
    labels = [p.label for p in chart.series[0].points] if chart.series else []
    top = _nice_max(max((p.value for s in chart.series for p in s.points), default=0))
    plot_w, plot_h = _W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B
    n = max(len(labels), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{_W}" '
        f'height="{_H}" viewBox="0 0 {_W} {_H}" aria-label="{_e(chart.title)}">',
        f"<title>{_e(chart.title)}</title>",
        f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#ffffff"/>',
    ]
    for i in range(5):
        y = _PAD_T + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{_PAD_L}" y1="{y:.1f}" x2="{_W - _PAD_R}" y2="{y:.1f}" '
            f'stroke="#e3e8ef" stroke-width="1"/>'
            f'<text x="{_PAD_L - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#56616f">{top * i / 4:g}</text>'
        )
    slot = plot_w / n
    every = max(1, n // 12)
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = _PAD_L + slot * (i + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{_H - _PAD_B + 16}" font-size="10" fill="#56616f" '
            f'text-anchor="end" transform="rotate(-35 {x:.1f} {_H - _PAD_B + 16})">'
            f"{_e(label)}</text>"
        )
    for si, series in enumerate(chart.series):
        colour = _COLOURS[si % len(_COLOURS)]
        if chart.kind == "bar":
            width = min(slot * 0.7 / max(len(chart.series), 1), 56.0)
            group = width * len(chart.series)
            for i, p in enumerate(series.points):
                h = plot_h * p.value / top
                x = _PAD_L + slot * i + (slot - group) / 2 + width * si
                parts.append(
                    f'<rect class="bar" x="{x:.1f}" y="{_PAD_T + plot_h - h:.1f}" '
                    f'width="{width:.1f}" height="{h:.1f}" fill="{colour}">'
                    f"<title>{_e(p.label)}: {p.value:g} {_e(chart.unit)}</title></rect>"
                )
        else:
            pts = " ".join(
                f"{_PAD_L + slot * (i + 0.5):.1f},{_PAD_T + plot_h - plot_h * p.value / top:.1f}"
                for i, p in enumerate(series.points)
            )
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" points="{pts}"/>'
            )
    parts.append(
        f'<line x1="{_PAD_L}" y1="{_PAD_T + plot_h}" x2="{_W - _PAD_R}" y2="{_PAD_T + plot_h}" '
        'stroke="#56616f" stroke-width="1"/>'
    )
    if len(chart.series) > 1:
        for si, series in enumerate(chart.series):
            x = _PAD_L + 8 + si * 140
            parts.append(
                f'<rect x="{x}" y="{_PAD_T}" width="10" height="10" '
                f'fill="{_COLOURS[si % len(_COLOURS)]}"/><text x="{x + 14}" y="{_PAD_T + 9}" '
                f'font-size="11">{_e(series.name)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def render(
    *,
    sections: Sequence[Section],
    controller_name: str | None,
    period: str,
    generated_at: str,
    govern_version: str,
    key_id: str,
) -> str:
    """The whole page as one HTML string."""
    available = [s for s in sections if s.status != NOT_AVAILABLE]
    missing = [s for s in sections if s.status == NOT_AVAILABLE]
    cards = [(name, value) for s in sections for name, value in s.figures.items()]
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>govern compliance report</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>Compliance evidence report</h1>",
        f'<p class="meta">Controller: {_e(controller_name or "not configured")} · '
        f"Period: {_e(period)} · Generated {_e(generated_at)} by govern {_e(govern_version)} "
        f"· Signing key {_e(key_id)}</p>",
        "<h2>Summary</h2>",
        f"<p>{len(available)} of {len(sections)} sections contain evidence. "
        + (
            "Not available in this version: " + _e(", ".join(s.title for s in missing)) + "."
            if missing
            else "Every capability is covered."
        )
        + "</p>",
        '<div class="cards">',
    ]
    for label, value in cards[:8]:
        body.append(
            f'<div class="card"><div class="v">{_e(value)}</div><div class="l">{_e(label)}'
            "</div></div>"
        )
    body.append("</div>")
    for s in sections:
        body.append(f'<section id="{_e(s.key)}"><h2>{_e(s.title)}</h2>')
        if s.status == NOT_AVAILABLE:
            body.append(f'<p class="na">{_e(s.summary[0])}</p>')
            for title in s.pending_charts:
                body.append(f'<p class="na">Chart "{_e(title)}": {NOT_AVAILABLE}.</p>')
        else:
            body.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in s.summary) + "</ul>")
            for chart in s.charts:
                body.append(f"<h3>{_e(chart.title)}</h3>{svg_chart(chart)}")
        body.append(
            '<p class="meta">Files: '
            + ", ".join(f"<code>{_e(f)}</code>" for f in s.files)
            + "</p></section>"
        )
    body.append(
        "<footer>Every file of this bundle is listed with its SHA-256 in manifest.json, "
        "signed with Ed25519 (manifest.sig). Check it with <code>govern audit verify "
        "BUNDLE.zip --public-key KEY</code>.</footer></main></body></html>"
    )
    return "\n".join(body) + "\n"
