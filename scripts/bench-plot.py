#!/usr/bin/env python3
"""Plots throughput and CPU-seconds per GiB against the number of files from the JSON lines that
`sluice-bench --results` writes. Plain SVG, no plotting library (nothing to install).

usage: scripts/bench-plot.py RESULTS.jsonl OUT.svg
"""
import json
import math
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
# The file-count series: default line size, 2 workers, counting sink; latest measurement wins.
series = {}
for r in rows:
    if r["line_bytes"] != 120 or r["workers"] != 2 or r["sink"] != "counting":
        continue
    if r.get("metadata", "path") != "path":  # --kube rows are a series of their own
        continue
    series.setdefault(r["gzip"], {})[r["files"]] = r

W, H, M = 460, 300, 55
panels = [("MiB/s (median of runs)", lambda r: r["mib_per_s"]["median"]),
          ("agent CPU-seconds per GiB (median)", lambda r: r["cpu_per_gib"]["median"])]
colors = {False: "#1f77b4", True: "#d62728"}
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H}" '
       'font-family="sans-serif" font-size="12">',
       f'<rect width="{2 * W}" height="{H}" fill="white"/>']
xs = sorted({f for s in series.values() for f in s})
if not xs:
    sys.exit("no file-count rows in " + sys.argv[1])
lx0, lx1 = math.log10(min(xs)), math.log10(max(xs))
for p, (title, get) in enumerate(panels):
    ox = p * W
    ymax = max(get(r) for s in series.values() for r in s.values()) * 1.15
    def px(f):
        return ox + M + (math.log10(f) - lx0) / max(lx1 - lx0, 1e-9) * (W - 2 * M)
    def py(v):
        return H - M + 10 - v / ymax * (H - 2 * M)
    out.append(f'<text x="{ox + W / 2}" y="20" text-anchor="middle">{title}</text>')
    out.append(f'<line x1="{ox + M}" y1="{py(0)}" x2="{ox + W - M}" y2="{py(0)}" stroke="black"/>')
    out.append(f'<line x1="{ox + M}" y1="{py(0)}" x2="{ox + M}" y2="{py(ymax)}" stroke="black"/>')
    for f in xs:
        out.append(f'<text x="{px(f)}" y="{py(0) + 16}" text-anchor="middle">{f}</text>')
    out.append(f'<text x="{ox + W / 2}" y="{H - 8}" text-anchor="middle">log files (log scale)</text>')
    for k in range(6):
        v = ymax * k / 5
        out.append(f'<text x="{ox + M - 6}" y="{py(v) + 4}" text-anchor="end">{v:.0f}</text>')
        out.append(f'<line x1="{ox + M}" y1="{py(v)}" x2="{ox + W - M}" y2="{py(v)}" stroke="#ddd"/>')
    for gz, s in sorted(series.items()):
        pts = [(px(f), py(get(s[f]))) for f in sorted(s)]
        out.append('<polyline fill="none" stroke-width="2" stroke="{}" points="{}"/>'.format(
            colors[gz], " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)))
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colors[gz]}"/>')
    for i, gz in enumerate([False, True]):
        out.append(f'<text x="{ox + W - M - 60}" y="{40 + 16 * i}" fill="{colors[gz]}">'
                   f'{"gzip" if gz else "plain"}</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
