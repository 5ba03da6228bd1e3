#!/usr/bin/env python3
"""Validates the manifests in deploy/k8s/ against the Kubernetes and KEDA schemas, offline.

    python deploy/validate.py [--kube-version 1.30.0]... [--json] deploy/k8s/*.yaml
    python deploy/validate.py --dockerfile deploy/Dockerfile      # BuildKit's parse, as JSON

Needs (pinned by `cargo xtask test`, which installs them into target/test-tools/deploy/):
- kubernetes-validate: the Kubernetes OpenAPI schemas of every release it bundles, used in
  *strict* mode (an unknown field is an error, like `kubectl apply`'s server-side field
  validation);
- cloudcoil-models-keda: models generated from KEDA's CRDs, whose JSON schema (made strict
  here the same way) checks ScaledJob and TriggerAuthentication. A ScaledJob's
  `jobTargetRef` is also checked as a core batch/v1 Job spec;
- dockerfile: the Go parser BuildKit uses, for --dockerfile.

A document of a kind neither knows is an error, never a warning. Exit status 0 when every
document validates, 1 otherwise; --json prints one object per document (with the parsed
document) for the tests to inspect.
"""

import argparse
import copy
import json
import sys

import jsonschema
import yaml

DEFAULT_KUBE_VERSIONS = ["1.30.0", "1.37.0"]

# keda.sh/v1alpha1 kinds this script knows, by kind: the cloudcoil model class name.
KEDA_KINDS = {
    "ScaledJob": "ScaledJob",
    "ScaledObject": "ScaledObject",
    "TriggerAuthentication": "TriggerAuthentication",
    "ClusterTriggerAuthentication": "ClusterTriggerAuthentication",
}


def strict(schema):
    """Makes every object schema with declared properties refuse undeclared ones."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


_keda_validators = {}


def keda_validator(kind):
    if kind not in _keda_validators:
        from cloudcoil.models.keda import v1alpha1

        model = getattr(v1alpha1, KEDA_KINDS[kind])
        schema = strict(model.model_json_schema(by_alias=True, mode="validation"))
        # The CRDs require a spec; the generated models let it be absent.
        schema.setdefault("required", [])
        schema["required"] += ["apiVersion", "kind", "metadata", "spec"]
        _keda_validators[kind] = jsonschema.Draft202012Validator(schema)
    return _keda_validators[kind]


def keda_version():
    from importlib.metadata import version

    return version("cloudcoil-models-keda")


def kube_errors(doc, version):
    """Errors of `doc` against the strict core schema of Kubernetes `version`."""
    from kubernetes_validate import utils

    try:
        utils.validate(doc, version, strict=True)
        return []
    except utils.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        return [f"kubernetes {e.version} (strict): {path}: {e.message}"]
    except utils.SchemaNotFoundError as e:
        return [e.message]
    except utils.VersionNotSupportedError as e:
        return [e.message]


def leaf_errors(error):
    """The errors inside an `anyOf: [schema, null]` (how the models spell optional fields),
    rather than the union's one-line "is not valid under any of the given schemas"."""
    if not error.context:
        return [error]
    branches = {}
    for e in error.context:
        branches.setdefault(e.relative_schema_path[0], []).append(e)
    real = [
        errors
        for errors in branches.values()
        if not all(e.validator == "type" and e.validator_value == "null" for e in errors)
    ]
    if len(real) == 1:
        return [leaf for e in real[0] for leaf in leaf_errors(e)]
    return [jsonschema.exceptions.best_match([error])]


def keda_errors(doc):
    errors = []
    found = keda_validator(doc["kind"]).iter_errors(doc)
    for e in (leaf for error in found for leaf in leaf_errors(error)):
        path = ".".join(str(p) for p in e.absolute_path)
        message = e.message if len(e.message) <= 300 else e.message[:300] + "…"
        errors.append(f"KEDA {keda_version()} CRD schema (strict): {path}: {message}")
    return sorted(errors)


def validate_doc(doc, versions):
    """(checks passed, errors) of one document."""
    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return [], ["not a Kubernetes object (no apiVersion/kind)"]
    api, kind = doc["apiVersion"], doc["kind"]
    checks, errors = [], []
    if api.startswith("keda.sh/"):
        if api != "keda.sh/v1alpha1" or kind not in KEDA_KINDS:
            return [], [f"no schema for {api} {kind}"]
        found = keda_errors(doc)
        errors += found
        if not found:
            checks.append(f"KEDA {keda_version()} CRD schema (strict)")
        if kind == "ScaledJob":
            # jobTargetRef is a batch/v1 JobSpec: check it as one, in every version.
            job = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": doc.get("metadata", {}).get("name", "job")},
                "spec": copy.deepcopy(doc.get("spec", {}).get("jobTargetRef", {})),
            }
            for version in versions:
                found = [f"spec.jobTargetRef as a Job: {m}" for m in kube_errors(job, version)]
                errors += found
                if not found:
                    checks.append(f"jobTargetRef as batch/v1 Job, kubernetes {version} (strict)")
    else:
        for version in versions:
            found = kube_errors(doc, version)
            errors += found
            if not found:
                checks.append(f"kubernetes {version} (strict)")
    return checks, errors


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def dockerfile_json(path):
    import dockerfile

    return [
        {
            "cmd": c.cmd.upper(),
            "flags": list(c.flags),
            "value": list(c.value),
            "json": c.json,
            "line": c.start_line,
            "original": c.original,
        }
        for c in dockerfile.parse_file(path)
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kube-version",
        action="append",
        help=f"Kubernetes version to validate against (repeatable; default {DEFAULT_KUBE_VERSIONS})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per document")
    parser.add_argument("--dockerfile", help="print this Dockerfile's instructions as JSON")
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()

    if args.dockerfile:
        json.dump(dockerfile_json(args.dockerfile), sys.stdout, indent=1)
        print()
        return 0
    if not args.paths:
        parser.error("no manifest given")
    versions = args.kube_version or DEFAULT_KUBE_VERSIONS
    results, failed = [], False
    for path in args.paths:
        try:
            docs = load(path)
        except (OSError, yaml.YAMLError) as e:
            results.append({"file": path, "errors": [f"cannot read: {e}"]})
            failed = True
            continue
        if not docs:
            results.append({"file": path, "errors": ["no documents"]})
            failed = True
        for index, doc in enumerate(docs):
            checks, errors = validate_doc(doc, versions)
            failed |= bool(errors)
            name = doc.get("metadata", {}).get("name") if isinstance(doc, dict) else None
            kind = doc.get("kind") if isinstance(doc, dict) else None
            results.append(
                {
                    "file": path,
                    "index": index,
                    "apiVersion": doc.get("apiVersion") if isinstance(doc, dict) else None,
                    "kind": kind,
                    "name": name,
                    "checks": checks,
                    "errors": errors,
                    "doc": doc,
                }
            )
    if args.json:
        json.dump(results, sys.stdout, indent=1, default=str)
        print()
    else:
        for r in results:
            what = f"{r['file']}: {r.get('kind')}/{r.get('name')}"
            if r["errors"]:
                for e in r["errors"]:
                    print(f"ERROR {what}: {e}")
            else:
                print(f"OK    {what}: {', '.join(r['checks'])}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
