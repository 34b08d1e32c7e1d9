#!/usr/bin/env python3
"""Offline checks of deploy/ that need Python libraries; the test suite runs them
(api/tests/api/deploy.rs) with the virtualenv scripts/test-services provisions.

  chart CHART OUT [NAME=VALUES.yaml ...]   lint (strict) and render the Helm chart once per
                                           values set (NAME=- for the defaults); writes
                                           OUT/NAME/kubernetes.yaml (core kinds) and
                                           OUT/NAME/custom-resources.yaml (operator kinds)
  custom-resources FILE...                 validate ServiceMonitor / PrometheusRule objects
                                           against the prometheus-operator models, rejecting
                                           unknown fields
  metrics EXPOSITION SOURCE...             every metric a PromQL query of SOURCE (alert rules
                                           YAML, Grafana dashboard JSON) names must be in the
                                           Prometheus text EXPOSITION
  logging LOG FLUENT_BIT.yaml... TEMPLATE  a real Souk JSON log line, run through the Fluent
                                           Bit filters of each config, carries request_id,
                                           and the index template maps what they produce
  yaml FILE...                             every document parses; eksctl configs name a
                                           cluster, a region and node groups

Each prints what it checked and exits 1 on the first kind of failure it finds.
"""

import json
import re
import sys
from pathlib import Path

import yaml

CUSTOM_GROUP = "monitoring.coreos.com/"


def fail(message):
    print(f"FAILED: {message}")
    sys.exit(1)


def documents(text):
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


# --- chart ----------------------------------------------------------------------------


def check_chart(chart, out, value_sets):
    import helm_python as helm

    out = Path(out)
    for spec in value_sets or ["default=-"]:
        name, _, path = spec.partition("=")
        values = None if path in ("", "-") else yaml.safe_load(Path(path).read_text())
        report = helm.lint(chart, values, strict=True, kube_version="v1.30.0")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + [
            {"severity": 3, "path": "", "error": e} for e in report["errors"]
        ]
        for message in report["messages"]:
            print(f"[{name}] lint severity {message['severity']}: {message['path']}: {message['error']}")
        if problems:
            fail(f"[{name}] helm lint --strict found {len(problems)} problem(s)")
        with helm.Chart.load(chart) as loaded:
            rendered = loaded.render(values, name="souk", namespace="shop", is_install=True)
        core, custom = [], []
        for template, text in sorted(rendered.items()):
            if template.endswith("NOTES.txt"):
                continue
            for doc in documents(text):
                if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
                    fail(f"[{name}] {template} renders a document without apiVersion/kind: {doc!r}")
                (custom if doc["apiVersion"].startswith(CUSTOM_GROUP) else core).append(doc)
        directory = out / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "kubernetes.yaml").write_text(yaml.safe_dump_all(core, sort_keys=False))
        (directory / "custom-resources.yaml").write_text(yaml.safe_dump_all(custom, sort_keys=False))
        kinds = sorted(f"{doc['kind']}/{doc['metadata']['name']}" for doc in core + custom)
        print(f"[{name}] lint clean; rendered {len(kinds)} objects: {', '.join(kinds)}")


# --- custom resources -----------------------------------------------------------------


def check_custom_resources(paths):
    from cloudcoil.models.prometheus_operator import v1

    models = {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule, "PodMonitor": v1.PodMonitor}
    checked = 0
    for path in paths:
        for doc in documents(Path(path).read_text()):
            model = models.get(doc.get("kind"))
            if model is None or doc.get("apiVersion") != "monitoring.coreos.com/v1":
                fail(f"{path}: no schema for {doc.get('apiVersion')} {doc.get('kind')}")
            try:
                model.model_validate(doc, extra="forbid")
            except Exception as error:  # pydantic.ValidationError, with every field path
                fail(f"{path}: {doc['kind']}/{doc['metadata']['name']}: {error}")
            print(f"{path}: {doc['kind']}/{doc['metadata']['name']} valid")
            checked += 1
    if checked == 0:
        fail("no custom resources to check")


# --- metrics --------------------------------------------------------------------------

KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2",
}
AGGREGATIONS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
    "quantile", "count_values", "group",
}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*|\$[A-Za-z0-9_{}]+|\S")


def strip_brackets(expr, opening, closing):
    """Drops everything between `opening` and `closing` (label matchers, ranges)."""
    result, depth = [], 0
    for char in expr:
        if char == opening:
            depth += 1
            result.append(" ")
        elif char == closing and depth:
            depth -= 1
            result.append(" ")
        elif depth == 0:
            result.append(char)
    return "".join(result)


def metric_names(expr):
    """Names of the series a PromQL expression selects (not functions, labels, keywords)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    expr = strip_brackets(strip_brackets(expr, "{", "}"), "[", "]")
    tokens = TOKEN.findall(expr)
    names, index = set(), 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token in GROUPING and following == "(":
            index = tokens.index(")", index)  # label lists hold no parentheses
        elif token.startswith("$") or not re.match(r"[A-Za-z_:]", token):
            pass
        elif following == "(" or token in AGGREGATIONS or token in KEYWORDS:
            pass
        else:
            names.add(token)
        index += 1
    return names


def queries(path):
    """(where, PromQL) pairs of an alert rules file or a Grafana dashboard."""
    text = Path(path).read_text()
    if path.endswith(".json"):
        dashboard = json.loads(text)
        found = []

        def walk(node, where):
            if isinstance(node, dict):
                title = node.get("title", where)
                if isinstance(node.get("expr"), str):
                    found.append((f"panel {title!r}", node["expr"]))
                for key, value in node.items():
                    walk(value, title)
            elif isinstance(node, list):
                for item in node:
                    walk(item, where)

        walk(dashboard.get("panels", []), "dashboard")
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            if variable.get("type") != "query" or not query:
                continue
            match = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*", query)
            found.append((f"variable {variable['name']!r}", match.group(1) if match else query))
        return found
    found = []
    for group in yaml.safe_load(text)["groups"]:
        for rule in group["rules"]:
            found.append((f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]))
    return found


def check_metrics(exposition, sources):
    exported = set()
    for line in Path(exposition).read_text().splitlines():
        if line and not line.startswith("#"):
            exported.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))
    print(f"the node exports {len(exported)} metric names")
    missing = []
    for source in sources:
        used = {}
        for where, expr in queries(source):
            for name in metric_names(expr):
                used.setdefault(name, where)
        if not used:
            fail(f"{source}: no metric names found in its queries")
        for name, where in sorted(used.items()):
            state = "ok" if name in exported else "MISSING"
            print(f"{source}: {name} ({where}): {state}")
            if name not in exported:
                missing.append(f"{name} ({source}, {where})")
    if missing:
        fail("queried but not exported by a running node: " + "; ".join(missing))


# --- logging --------------------------------------------------------------------------


def fluent_bit_filters(config):
    """A stand-in for Fluent Bit (test double: the real one is not installable here):
    applies the `parser`, `nest` (lift) and `modify` (rename, add) filters of a Fluent Bit
    YAML config to one record, the only filter kinds Souk's configs use."""
    parsers = {p["name"]: p for p in config.get("parsers", [])}
    steps = []
    for entry in config["pipeline"]["filters"]:
        kind = entry["name"]
        if kind == "parser":
            def step(record, entry=entry):
                raw = record.get(entry["key_name"])
                parser = parsers.get(entry["parser"])
                if parser is None or parser.get("format") != "json" or not isinstance(raw, str):
                    return record
                parsed = json.loads(raw)
                if entry.get("reserve_data") in ("on", True):
                    kept = {k: v for k, v in record.items() if k != entry["key_name"]}
                    return {**kept, **parsed}
                return parsed
        elif kind == "nest":
            if entry["operation"] != "lift":
                fail(f"nest operation {entry['operation']} is not modelled")

            def step(record, entry=entry):
                inner = record.get(entry["nested_under"])
                if not isinstance(inner, dict):
                    return record
                lifted = {k: v for k, v in record.items() if k != entry["nested_under"]}
                for key, value in inner.items():
                    lifted[entry.get("add_prefix", "") + key] = value
                return lifted
        elif kind == "modify":
            def step(record, entry=entry):
                record = dict(record)
                for rule in as_list(entry.get("rename")):
                    old, new = rule.split()
                    if old in record:
                        record[new] = record.pop(old)
                for rule in as_list(entry.get("add")):
                    key, value = rule.split(maxsplit=1)
                    record.setdefault(key, value)
                return record
        else:
            continue  # kubernetes metadata and the like do not touch Souk's fields
        steps.append(step)
    return steps


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def check_logging(log_path, configs, template_path):
    lines = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.startswith("{")]
    requests = [line for line in lines if isinstance(line.get("span"), dict) and "request_id" in line["span"]]
    if not requests:
        fail(f"{log_path}: no JSON log line carries span.request_id")
    sample = requests[-1]
    template = json.loads(Path(template_path).read_text())
    mapped = template["template"]["mappings"]["properties"]
    for config_path in configs:
        config = yaml.safe_load(Path(config_path).read_text())
        record = {"log": json.dumps(sample), "stream": "stdout"}
        for step in fluent_bit_filters(config):
            record = step(record)
        for field in ("request_id", "level", "message", "route"):
            if field not in record:
                fail(f"{config_path}: a Souk log line yields no `{field}` field: {record}")
        if record["request_id"] != sample["span"]["request_id"]:
            fail(f"{config_path}: request_id {record['request_id']} is not the log's {sample['span']['request_id']}")
        unmapped = [field for field in ("request_id", "level", "message", "route", "status", "latency_ms") if field in record and field not in mapped]
        if unmapped:
            fail(f"{template_path}: no mapping for {unmapped}")
        outputs = config["pipeline"]["outputs"]
        if not any(output["name"] == "es" for output in outputs):
            fail(f"{config_path}: no Elasticsearch output")
        print(f"{config_path}: a real request log line ships as {json.dumps(record, sort_keys=True)}")
    if mapped["request_id"].get("type") != "keyword":
        fail(f"{template_path}: request_id must be a keyword (exact match), not {mapped['request_id']}")
    print(f"{template_path}: maps {', '.join(sorted(mapped))}")


# --- plain YAML -----------------------------------------------------------------------


def check_yaml(paths):
    for path in paths:
        docs = documents(Path(path).read_text())
        if not docs:
            fail(f"{path}: no YAML document")
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "ClusterConfig":
                if doc.get("apiVersion") != "eksctl.io/v1alpha5":
                    fail(f"{path}: eksctl ClusterConfig must be eksctl.io/v1alpha5")
                metadata = doc.get("metadata", {})
                if not metadata.get("name") or not metadata.get("region"):
                    fail(f"{path}: eksctl ClusterConfig needs metadata.name and metadata.region")
                if not doc.get("managedNodeGroups") and not doc.get("nodeGroups"):
                    fail(f"{path}: eksctl ClusterConfig has no node groups")
        print(f"{path}: {len(docs)} document(s) parse")


def main(argv):
    if len(argv) < 2:
        fail(__doc__)
    command, args = argv[1], argv[2:]
    if command == "chart" and len(args) >= 2:
        check_chart(args[0], args[1], args[2:])
    elif command == "custom-resources" and args:
        check_custom_resources(args)
    elif command == "metrics" and len(args) >= 2:
        check_metrics(args[0], args[1:])
    elif command == "logging" and len(args) >= 3:
        check_logging(args[0], args[1:-1], args[-1])
    elif command == "yaml" and args:
        check_yaml(args)
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv)
