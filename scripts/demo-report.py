#!/usr/bin/env python3
"""Prints what the demo shipped: document count, documents per namespace, and a few documents.

Usage: demo-report.py ES_URL INDEX_PATTERN EXPECTED   (exit 1 if the count differs)
"""
import json
import sys
import urllib.request


def call(url, body=None, post=False):
    data = json.dumps(body).encode() if body is not None else (b"" if post else None)
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def main():
    es, pattern, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    call(f"{es}/{pattern}/_refresh", post=True)
    count = call(f"{es}/{pattern}/_count")["count"]
    print(f"\nElasticsearch {es} holds {count} documents in {pattern} (expected {expected}).\n")
    aggs = call(f"{es}/{pattern}/_search", {"size": 0, "aggs": {
        "ns": {"terms": {"field": "kubernetes.namespace"}},
        "stream": {"terms": {"field": "log.iostream"}},
        "joined": {"filter": {"match": {"message": "java.lang.IllegalStateException"}}}}})["aggregations"]
    print("Documents per namespace:")
    for b in aggs["ns"]["buckets"]:
        print(f"  {b['key']:<14}{b['doc_count']}")
    print("Per stream: " + ", ".join(f"{b['key']} {b['doc_count']}" for b in aggs["stream"]["buckets"]))
    print(f"Java stack traces grouped into one document each: {aggs['joined']['doc_count']}\n")
    print("A few of them:")
    for query in ({"exists": {"field": "json.level"}}, {"match": {"message": "java.lang.IllegalStateException"}}, {"match": {"log.iostream": "stdout"}}):
        hits = call(f"{es}/{pattern}/_search", {"size": 1, "query": query, "sort": [{"@timestamp": "asc"}]})["hits"]["hits"]
        for h in hits:
            s = h["_source"]
            k = s.get("kubernetes", {})
            print(f"  {s['@timestamp']} {k.get('namespace')}/{k.get('pod', {}).get('name')} [{s['log']['iostream']}]")
            for line in s["message"].splitlines()[:4]:
                print(f"      {line[:120]}")
            if "json" in s:
                print(f"      json: {json.dumps(s['json'])[:120]}")
    if count != expected:
        print(f"MISMATCH: expected {expected} documents, found {count}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
