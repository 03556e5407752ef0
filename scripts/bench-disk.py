#!/usr/bin/env python3
"""The index-size benchmark of BENCHMARKS.md ("Index size"): bytes on disk and Elasticsearch CPU
per GiB of container logs, for the agent's template and its variants, against Fluent Bit's
default documents with dynamic mapping. Run through scripts/bench-disk (which builds the release
binaries first); never part of scripts/test.

One run:
1. sluice-loggen writes the benchmark's tree once (kept under --work-dir and reused).
2. The release agent ships it (read_from: head, JSON parsing on, multiline auto) into
   `bd-agent-*` with the template `sluice setup` installs; then refresh, flush, force-merge to one
   segment. Store size (primaries) and the ES process's CPU (`_nodes/stats/process`, before the
   first document to after the merge) are taken.
3. The agent's documents (with their `_id`s) are read back with a scroll into an NDJSON file.
   Each variant of the template (a higher-priority template for `bd-<variant>`) gets the same
   documents bulk-loaded from that file (`create`, with or without the agent's ids), then the
   same refresh, flush, merge and measurements.
4. sluice-fbdocs writes Fluent Bit's documents for the same tree; they are loaded into
   `bd-fluentbit` with no template (dynamic mapping), measured the same way.
Prints a Markdown table; --results appends one JSON line per row.
"""

import argparse
import base64
import copy
import hashlib
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--es", required=True, help="Elasticsearch URL")
ap.add_argument("--bin-dir", required=True)
ap.add_argument("--bytes", default="256MiB")
ap.add_argument("--files", type=int, default=40)
ap.add_argument("--work-dir", default="/tmp/sluice-bench-disk")
ap.add_argument("--only", default="", help="comma-separated variant names (default: all)")
ap.add_argument("--results", help="append one JSON line per row to this file")
ap.add_argument("--label", default="")
ap.add_argument("--keep", action="store_true", help="keep the indices at the end")
args = ap.parse_args()

URL = urllib.parse.urlparse(args.es.rstrip("/"))


def req(method, path, body=None, ctype="application/json"):
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=3600)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    headers = {"content-type": ctype} if data is not None else {}
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    out = r.read()
    conn.close()
    try:
        return r.status, json.loads(out) if out else None
    except ValueError:
        return r.status, out.decode(errors="replace")


def ok(method, path, body=None):
    status, out = req(method, path, body)
    if status >= 300:
        sys.exit(f"{method} {path}: HTTP {status}: {str(out)[:500]}")
    return out


def es_cpu_ms():
    nodes = ok("GET", "/_nodes/stats/process?filter_path=nodes.*.process.cpu")["nodes"]
    return sum(n["process"]["cpu"]["total_in_millis"] for n in nodes.values())


def settle(index):
    ok("POST", f"/{index}/_refresh")
    ok("POST", f"/{index}/_flush")
    ok("POST", f"/{index}/_forcemerge?max_num_segments=1")
    ok("POST", f"/{index}/_refresh")


def delete(pattern):
    """Deletes the indices matching a pattern one by one (wildcard deletes are refused by
    default: action.destructive_requires_name)."""
    st, rows = req("GET", f"/_cat/indices/{pattern}?h=index&format=json")
    for r in rows if st == 200 else []:
        req("DELETE", f"/{r['index']}")


def store(index):
    rows = ok("GET", f"/_cat/indices/{index}?bytes=b&h=pri.store.size,docs.count&format=json")
    return sum(int(r["pri.store.size"]) for r in rows), sum(int(r["docs.count"]) for r in rows)


# --- 1. the tree -------------------------------------------------------------------------------
root = os.path.join(args.work_dir, f"tree-f{args.files}-b{args.bytes}")
stats_file = os.path.join(root, "stats.json")
if not os.path.exists(stats_file):
    os.makedirs(root, exist_ok=True)
    out = subprocess.run(
        [f"{args.bin_dir}/sluice-loggen", "--root", root, "--pods", str(args.files),
         "--bytes", args.bytes, "--format", "cri", "--json-percent", "30",
         "--partial-percent", "5", "--trace-percent", "3"],
        check=True, capture_output=True, text=True).stdout
    with open(stats_file, "w") as f:
        f.write(out)
stats = json.load(open(stats_file))
GIB = stats["bytes"] / (1 << 30)
print(f"tree {root}: {stats['files']} files, {stats['bytes'] / (1 << 20):.1f} MiB, "
      f"{stats['events_with_multiline']} events (multiline)", file=sys.stderr)

rows = []


def record(name, what, cpu_ms, size, docs, errors=0):
    row = {"variant": name, "what": what, "bytes_per_gib": size / GIB,
           "mib_per_gib": size / GIB / (1 << 20), "es_cpu_s_per_gib": cpu_ms / 1000 / GIB,
           "docs": docs, "bulk_errors": errors, "raw_bytes": stats["bytes"], "store_bytes": size,
           "label": args.label}
    rows.append(row)
    print(f"  {name}: {row['mib_per_gib']:.0f} MiB/GiB, ES CPU {row['es_cpu_s_per_gib']:.1f} s/GiB, "
          f"{docs} docs, {errors} bulk errors", file=sys.stderr)
    if args.results:
        with open(args.results, "a") as f:
            f.write(json.dumps(row) + "\n")


def wanted(name):
    return not args.only or name in args.only.split(",")


# --- 2. the agent itself -----------------------------------------------------------------------
agent_dir = os.path.join(args.work_dir, "agent")
export = os.path.join(args.work_dir, f"agent-docs-f{args.files}-b{args.bytes}.ndjson")
delete("bd-*")
for t in ("sluice_bd-agent", "sluice_bd-agent-dlq"):
    req("DELETE", f"/_index_template/{t}")
subprocess.run(["rm", "-rf", agent_dir], check=True)
os.makedirs(agent_dir)
config = os.path.join(agent_dir, "sluice.yaml")
with open(config, "w") as f:
    f.write(f"""node_name: bench-node
cluster_name: bench
state_dir: {agent_dir}/state
input:
  root: {root}
  include: ["/var/log/containers/*.log"]
  read_from: head
parse:
  json:
    enabled: true
    target: json
elasticsearch:
  endpoints: ["{args.es}"]
  index: "bd-agent-%Y.%m.%d"
  dead_letter_index: "bd-agent-dlq-%Y.%m.%d"
telemetry:
  listen: "off"
""")
subprocess.run([f"{args.bin_dir}/sluice", "--config", config, "setup"], check=True,
               stdout=subprocess.DEVNULL)
base = ok("GET", "/_index_template/sluice_bd-agent")["index_templates"][0]["index_template"]
if wanted("agent") or not os.path.exists(export):
    cpu0 = es_cpu_ms()
    agent = subprocess.Popen([f"{args.bin_dir}/sluice", "--config", config],
                             env={**os.environ, "SLUICE_LOG": "warn"})
    want = stats["events_with_multiline"]
    deadline = time.time() + 3600
    while True:
        st, c = req("GET", "/bd-agent-2*/_count")
        n = c["count"] if st == 200 else 0
        if n >= want:
            break
        if agent.poll() is not None or time.time() > deadline:
            sys.exit(f"agent stopped or timed out at {n} of {want} documents")
        time.sleep(1)
    agent.terminate()
    agent.wait(60)
    settle("bd-agent-2*")
    cpu1 = es_cpu_ms()
    size, docs = store("bd-agent-2*")
    st, dlq = req("GET", "/bd-agent-dlq-*/_count")
    record("agent", "the agent, its template as installed (`sluice setup`)", cpu1 - cpu0, size, docs,
           dlq.get("count", 0) if st == 200 else 0)

# --- 3. the agent's documents, read back ------------------------------------------------------
if not os.path.exists(export):
    tmp = export + ".tmp"
    with open(tmp, "wb") as f:
        page = ok("POST", "/bd-agent-2*/_search?scroll=5m", {"size": 5000, "sort": ["_doc"]})
        while page["hits"]["hits"]:
            for h in page["hits"]["hits"]:
                f.write(json.dumps({"create": {"_id": h["_id"]}}).encode() + b"\n")
                f.write(json.dumps(h["_source"], separators=(",", ":")).encode() + b"\n")
            page = ok("POST", "/_search/scroll", {"scroll": "5m", "scroll_id": page["_scroll_id"]})
        req("DELETE", "/_search/scroll", {"scroll_id": page["_scroll_id"]})
    os.rename(tmp, export)


def load(index, path, drop_ids=False, chunk=5 << 20):
    """Bulk-loads an NDJSON file of create actions; returns the number of refused items."""
    errors = 0
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=600)
    with open(path, "rb") as f:
        while True:
            lines = f.readlines(chunk)
            if not lines:
                break
            if len(lines) % 2:
                lines.append(f.readline())
            if drop_ids:
                lines = [b'{"create":{}}\n' if i % 2 == 0 else l for i, l in enumerate(lines)]
            conn.request("POST", f"/{index}/_bulk?filter_path=errors,items.*.error.type",
                         body=b"".join(lines), headers={"content-type": "application/x-ndjson"})
            r = conn.getresponse()
            out = json.loads(r.read())
            if r.status != 200:
                sys.exit(f"bulk into {index}: HTTP {r.status}: {str(out)[:300]}")
            if out.get("errors"):
                errors += sum(1 for it in out["items"] if "error" in next(iter(it.values())))
    conn.close()
    return errors


def rewritten(name, edit):
    """The agent's documents with `edit(action, doc)` applied to each pair, written once."""
    path = os.path.join(args.work_dir, f"agent-docs-f{args.files}-b{args.bytes}-{name}.ndjson")
    if not os.path.exists(path):
        with open(export, "rb") as src, open(path + ".tmp", "wb") as out:
            for action in src:
                a, d = json.loads(action), json.loads(src.readline())
                edit(a, d)
                out.write(json.dumps(a, separators=(",", ":")).encode() + b"\n")
                out.write(json.dumps(d, separators=(",", ":")).encode() + b"\n")
        os.rename(path + ".tmp", path)
    return path


def variant(name, what, mutate=None, source=export, drop_ids=False, template=True, edit=None):
    if not wanted(name):
        return
    if edit:
        source = rewritten(name, edit)
    index = f"bd-{name}"
    req("DELETE", f"/{index}")
    req("DELETE", f"/_index_template/bd-{name}")
    if template:
        t = copy.deepcopy(base)
        for k in ("created_date", "created_date_millis", "modified_date", "modified_date_millis"):
            t.pop(k, None)
        t["index_patterns"] = [index]
        t["priority"] = 500
        t.pop("data_stream", None)
        if mutate:
            mutate(t)
        st, out = req("PUT", f"/_index_template/bd-{name}", t)
        if st >= 300:
            print(f"  {name}: refused by this cluster: {str(out)[:300]}", file=sys.stderr)
            rows.append({"variant": name, "what": what, "refused": str(out)[:300]})
            return
        st, out = req("PUT", f"/{index}")
        if st >= 300:
            print(f"  {name}: refused by this cluster: {str(out)[:300]}", file=sys.stderr)
            rows.append({"variant": name, "what": what, "refused": str(out)[:300]})
            return
    c0 = es_cpu_ms()
    errors = load(index, source, drop_ids)
    settle(index)
    c1 = es_cpu_ms()
    size, docs = store(index)
    record(name, what, c1 - c0, size, docs, errors)
    if not args.keep:
        req("DELETE", f"/{index}")
        req("DELETE", f"/_index_template/bd-{name}")


def settings(**kv):
    def m(t):
        t["template"].setdefault("settings", {}).update(kv)
    return m


def props(t):
    return t["template"]["mappings"]["properties"]


def message(mapping):
    def m(t):
        props(t)["message"] = mapping
    return m


def logsdb(t):
    t["template"].setdefault("settings", {})["index.mode"] = "logsdb"


def both(*fs):
    def m(t):
        for f in fs:
            f(t)
    return m




def seq_id(offset_bytes):
    """Ids of the shape `<file seed, 8 bytes><start offset, big-endian>` in base64url: the ids of
    one file share a prefix and sort by offset (the agent's are a 128-bit hash of the same two)."""
    def edit(a, d):
        seed = hashlib.blake2b(d["log"]["file"]["path"].encode(), digest_size=8).digest()
        raw = seed + d["log"]["offset"].to_bytes(offset_bytes, "big")
        a["create"]["_id"] = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return edit



def drop_lifted(a, d):
    """Takes out of `json` the keys whose value the agent lifted to `message` and `log.level`."""
    j = d.get("json")
    if not isinstance(j, dict):
        return
    for k in ("msg", "message"):
        if k in j and j[k] == d.get("message"):
            del j[k]
            break
    for k in ("level", "severity", "lvl"):
        if k in j and isinstance(j[k], str) and j[k].lower() == d.get("log", {}).get("level"):
            del j[k]
            break
    if not j:
        del d["json"]


def both_edits(*es):
    def edit(a, d):
        for e in es:
            e(a, d)
    return edit

variant("ours", "our template, the agent's documents and ids, bulk-loaded")
fb = os.path.join(args.work_dir, f"fluentbit-docs-f{args.files}-b{args.bytes}.ndjson")
if wanted("fluentbit"):
    if not os.path.exists(fb):
        subprocess.run([f"{args.bin_dir}/sluice-fbdocs", "--root", root, "--out", fb + ".tmp"],
                       check=True, stdout=subprocess.DEVNULL)
        os.rename(fb + ".tmp", fb)
    variant("fluentbit", "Fluent Bit's default documents, no template (dynamic mapping), auto ids",
            source=fb, template=False)

variant("ours-auto-id", "the same without `_id` (Elasticsearch's auto ids)", drop_ids=True)
variant("best-compression", "+ `index.codec: best_compression`",
        settings(**{"index.codec": "best_compression"}))
variant("standard", "`index.mode: standard` (with best_compression: the 8.x and OpenSearch default)",
        settings(**{"index.mode": "standard", "index.codec": "best_compression"}))
variant("standard-default-codec", "`index.mode: standard`, default codec",
        settings(**{"index.mode": "standard", "index.codec": "default"}))
variant("logsdb", "+ `index.mode: logsdb` (synthetic source, sorted by host and time)", logsdb)
variant("logsdb-auto-id", "+ `index.mode: logsdb`, auto ids", logsdb, drop_ids=True)
variant("logsdb-stored-source", "+ `index.mode: logsdb` with stored `_source` (what a basic "
        "licence gets: synthetic source needs Enterprise)",
        both(logsdb, settings(**{"index.mapping.source.mode": "stored"})))
variant("logsdb-seq-id", "+ `logsdb`, ids `<file seed><offset>` (8 + 8 bytes) instead of a hash",
        logsdb, edit=seq_id(8))
variant("logsdb-seq-id6", "+ `logsdb`, ids `<file seed><offset>` (8 + 6 bytes)",
        logsdb, edit=seq_id(6))
variant("logsdb-no-lifted", "+ `logsdb`, `json` without the keys lifted to `message`/`log.level`",
        logsdb, edit=drop_lifted)
variant("logsdb-seq-id-no-lifted", "+ `logsdb`, both of the above",
        logsdb, edit=both_edits(seq_id(8), drop_lifted))
variant("match-only-text", "`message` as `match_only_text`",
        message({"type": "match_only_text"}))
variant("message-keyword", "`message` with a `.keyword` copy (as dynamic mapping makes it)",
        message({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}))
variant("dynamic", "the agent's documents, no template (dynamic mapping)", template=False)

if not args.keep:
    delete("bd-agent-*")
    req("DELETE", "/_index_template/sluice_bd-agent")
    req("DELETE", "/_index_template/sluice_bd-agent-dlq")

print(f"\n{stats['bytes'] / (1 << 20):.0f} MiB of logs ({stats['files']} files, "
      f"{stats['events_with_multiline']} events)\n")
print("| variant | what | MiB on disk per GiB | ES CPU s/GiB | documents |")
print("|---|---|---|---|---|")
for r in rows:
    if "refused" in r:
        print(f"| {r['variant']} | {r['what']} | refused: {r['refused'][:120]} | | |")
    else:
        print(f"| {r['variant']} | {r['what']} | {r['mib_per_gib']:.0f} | "
              f"{r['es_cpu_s_per_gib']:.1f} | {r['docs']} |")
