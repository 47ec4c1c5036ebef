#!/usr/bin/env python3
"""Write deploy/k8s/schemas/mpijob-kubeflow-v2beta1.json, the JSON schema with which
scripts/validate-deploy.sh (kubeconform) checks the MPIJob of deploy/k8s/batch/, from the Kubeflow
MPI Operator's CRD:

    git clone https://github.com/kubeflow/mpi-operator
    git -C mpi-operator checkout caa3c47fc42eb762635f78045ec0fcd1a89eb038   # v0.8.2
    python3 scripts/gen_mpijob_schema.py mpi-operator/manifests/base/kubeflow.org_mpijobs.yaml

The conversion is kubeconform's own (its scripts/openapi2jsonschema.py): the CRD's
openAPIV3Schema of version v2beta1, every object with properties closed to other fields
(additionalProperties false, as kubectl's validation does; the root left open), and
"format: int-or-string" as string or integer. The fields' descriptions are left out (they do not
take part in validation; the CRD has them). The CRD file is checked against the SHA-256 of the
pinned release, so that the committed schema says where it came from. Needs PyYAML.
"""
import hashlib
import json
import os
import sys

import yaml

CRD_SHA256 = "78b0131f931fcc8d99f6ce0407281f41b62527e443ec691d26d9634b390ad3bb"
OUT = os.path.join(os.path.dirname(__file__), "..", "deploy", "k8s", "schemas", "mpijob-kubeflow-v2beta1.json")


def additional_properties(node, skip=False):
    if isinstance(node, dict):
        if "properties" in node and not skip and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for v in node.values():
            additional_properties(v)
    elif isinstance(node, list):
        for v in node:
            additional_properties(v)
    return node


def int_or_string(node):
    if isinstance(node, dict):
        if node.get("format") == "int-or-string":
            return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
        return {k: int_or_string(v) for k, v in node.items()}
    if isinstance(node, list):
        return [int_or_string(v) for v in node]
    return node


def no_descriptions(node):
    if isinstance(node, dict):
        return {k: no_descriptions(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [no_descriptions(v) for v in node]
    return node


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    raw = open(sys.argv[1], "rb").read()
    got = hashlib.sha256(raw).hexdigest()
    if got != CRD_SHA256:
        sys.exit(f"{sys.argv[1]}: SHA-256 {got}, not the pinned v0.8.2 CRD's {CRD_SHA256}")
    crds = [d for d in yaml.safe_load_all(raw) if d and d.get("kind") == "CustomResourceDefinition"]
    if len(crds) != 1 or crds[0]["spec"]["names"]["kind"] != "MPIJob":
        sys.exit(f"{sys.argv[1]}: not the MPIJob CRD")
    (version,) = [v for v in crds[0]["spec"]["versions"] if v["name"] == "v2beta1"]
    schema = no_descriptions(int_or_string(additional_properties(version["schema"]["openAPIV3Schema"], skip=True)))
    with open(OUT + ".tmp", "w") as f:
        json.dump(schema, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
