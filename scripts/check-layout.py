#!/usr/bin/env python3
"""Checks the source layout the README describes: no dependency cycles between the folders of
src/ (nor between the folders inside each), no function over 80 lines outside tests, and
mod.rs files that are indexes (at most 60 lines before their tests).

Dependencies are read from `crate::`/`super::` paths in the code (tests excluded), which is
how this crate names its own modules. Exits 1 with the offenders listed."""
import collections
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "src"
MAX_FN_LINES = 80
MAX_INDEX_LINES = 60
FN = re.compile(r"^\s*(pub(\([\w:]+\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def rust_files():
    for folder, _, names in os.walk(ROOT):
        for name in sorted(names):
            if name.endswith(".rs"):
                yield os.path.join(folder, name)


def module_of(path):
    parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    return parts[:-1] if parts[-1] in ("mod", "lib", "main") else parts


def without_tests(text):
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


def expand(tree):
    """`a::{b, c::{d}}` → [`a::b`, `a::c::d`]."""
    match = re.match(r"^([\w:]*?)\{(.*)\}$", tree.strip(), re.S)
    if not match:
        return [tree.strip()]
    head, body, parts, depth, current = match.group(1), match.group(2), [], 0, ""
    for ch in body:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [head + inner for part in parts if part.strip() for inner in expand(part)]


def dependencies():
    edges = collections.defaultdict(set)
    for path in rust_files():
        me = module_of(path)
        text = re.sub(r"//.*", "", without_tests(open(path).read()))
        paths = []
        for use in re.finditer(r"\buse\s+((?:crate|super)::[^;]*);", text, re.S):
            paths += [re.sub(r"\s", "", p) for p in expand(use.group(1))]
        paths += [m.group(0) for m in re.finditer(r"\b(crate|super)(::\w+)+", text)]
        for p in paths:
            segments = p.split("::")
            if segments[0] == "crate":
                target = segments[1:]
            else:
                base = list(me)
                while segments and segments[0] == "super":
                    base, segments = base[:-1], segments[1:]
                target = base + segments
            edges[tuple(me)].add(tuple(target))
    return edges


def cycles(edges, prefix):
    """Cycles between the folders (or files) directly under `prefix`."""
    graph, why = collections.defaultdict(set), collections.defaultdict(set)
    depth = len(prefix)
    for source, targets in edges.items():
        if list(source[:depth]) != prefix or len(source) <= depth:
            continue
        for target in targets:
            if list(target[:depth]) != prefix or len(target) <= depth:
                continue
            a, b = source[depth], target[depth]
            if a != b:
                graph[a].add(b)
                why[(a, b)].add("::".join(source))
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in list(graph):
        if v not in index:
            visit(v)
    problems = []
    for component in found:
        inside = "::".join(prefix) or "src"
        links = [
            f"{a} -> {b} (in {', '.join(sorted(why[(a, b)]))})"
            for a in sorted(component)
            for b in sorted(graph[a])
            if b in component
        ]
        problems.append(f"cycle in {inside}: " + "; ".join(links))
    return problems


def long_functions():
    problems = []
    for path in rust_files():
        lines = open(path).read().split("\n")
        cut = next((i for i, l in enumerate(lines) if l.strip() == "#[cfg(test)]"), len(lines))
        if os.path.basename(path) == "mod.rs" and cut > MAX_INDEX_LINES:
            problems.append(f"{path}: {cut} lines; a mod.rs is an index (at most {MAX_INDEX_LINES})")
        for start in range(cut):
            match = FN.match(lines[start])
            if not match:
                continue
            depth, end, opened = 0, start, False
            while end < len(lines):
                code = re.sub(r'"(\\.|[^"\\])*"', '""', lines[end])
                code = re.sub(r"'.'", "''", code).split("//")[0]
                if not opened and ";" in code and "{" not in code:
                    break
                depth += code.count("{") - code.count("}")
                opened = opened or "{" in code
                if opened and depth <= 0:
                    break
                end += 1
            length = end - start + 1
            if length > MAX_FN_LINES:
                problems.append(f"{path}:{start + 1}: fn {match.group(6)} is {length} lines")
    return problems


def main():
    edges = dependencies()
    folders = sorted({m[:1] for m in edges} | {m[:2] for m in edges if len(m) > 1})
    problems = []
    for prefix in [[]] + [list(f) for f in folders if os.path.isdir(os.path.join(ROOT, *f))]:
        problems += cycles(edges, prefix)
    problems += long_functions()
    for problem in problems:
        print(problem)
    print(f"layout: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
