#!/usr/bin/env python3
"""perf/lib/result_json.py TSV OUT.json — turns result.sh's TSV into JSON.

Each TSV line is KEY<TAB>TYPE<TAB>VALUE with TYPE s (string), n (number) or
b (bool). KEY is a path: "a.b" nests objects, "a[3]" indexes an array
(grown with nulls as needed), "a[]" appends. Exits 1 with a message naming
the line on any malformed input; writes OUT atomically (temp + rename).
Standard library only.
"""
import json
import os
import re
import sys

TOKEN = re.compile(r"([^.\[\]]+)|\[(\d*)\]")


def parse_path(key):
    parts, pos = [], 0
    for m in TOKEN.finditer(key):
        if m.start() != pos and key[pos] != ".":
            raise ValueError("bad key %r" % key)
        if m.group(1) is not None:
            parts.append(m.group(1))
        else:
            parts.append(int(m.group(2)) if m.group(2) else None)  # None: append
        pos = m.end()
        if pos < len(key) and key[pos] == ".":
            pos += 1
    if pos != len(key) or not parts or not isinstance(parts[0], str):
        raise ValueError("bad key %r" % key)
    return parts


def convert(kind, value):
    if kind == "s":
        return value
    if kind == "n":
        num = float(value)  # ValueError on junk
        if num != num or num in (float("inf"), float("-inf")):
            raise ValueError("not a finite number: %r" % value)
        return int(value) if re.fullmatch(r"-?\d+", value) else num
    if kind == "b":
        if value not in ("true", "false"):
            raise ValueError("not a bool: %r" % value)
        return value == "true"
    raise ValueError("unknown type %r" % kind)


def put(root, parts, value):
    node = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt = None if last else ([] if not isinstance(parts[i + 1], str) else {})
        if isinstance(part, str):
            if not isinstance(node, dict):
                raise ValueError("path component %r is not an object" % part)
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), type(nxt)):
                    node[part] = nxt
                node = node[part]
        else:
            if not isinstance(node, list):
                raise ValueError("array index on a non-array")
            if part is None:
                node.append(value if last else nxt)
                node = node[-1]
                continue
            while len(node) <= part:
                node.append(None)
            if last:
                node[part] = value
            else:
                if not isinstance(node[part], type(nxt)):
                    node[part] = nxt
                node = node[part]


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: result_json.py TSV OUT.json\n")
        return 2
    root = {}
    with open(sys.argv[1], encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            try:
                key, kind, value = line.split("\t", 2)
                put(root, parse_path(key), convert(kind, value))
            except ValueError as e:
                sys.stderr.write("result_json.py: %s:%d: %s\n" % (sys.argv[1], lineno, e))
                return 1
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(root, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
