#!/usr/bin/env bash
# Chart and manifest checks: the Argo CD health check run by a real Lua interpreter against
# each kind in each state, `helm lint` and `helm template` (helm built once from its Go
# module, see ensure-helm.sh), and the kustomize install rendered by kubectl when present.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v lua5.4 >/dev/null; then
  echo "installing lua5.4"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq lua5.4 >/dev/null
fi
lua5.4 charts/argocd-health-test.lua charts/coffer/files/argocd-health.lua

# The chart ships the same CRDs as crds/ (the Rust test keeps crds/ itself current).
for f in crds/objectstore.yaml crds/bucket.yaml crds/accesskey.yaml; do
  cmp -s "$f" "charts/coffer/crds/$(basename "$f")" || {
    echo "charts/coffer/crds/$(basename "$f") differs from $f: run coffer-operator crdgen"; exit 1; }
done

helm="$(charts/ensure-helm.sh)"
"$helm" lint --strict --kube-version 1.34.0 charts/coffer
"$helm" lint --strict --kube-version 1.34.0 charts/coffer --set replicas=2 --set 'watchNamespaces={apps,data}' --set argocd.healthChecks.enabled=true
all="$("$helm" template coffer charts/coffer --namespace coffer-system --kube-version 1.34.0 --include-crds)"
for kind in CustomResourceDefinition Deployment ServiceAccount ClusterRole ClusterRoleBinding Service; do
  grep -q "^kind: $kind\$" <<<"$all" || { echo "helm template: no $kind"; exit 1; }
done
scoped="$("$helm" template coffer charts/coffer --namespace coffer-system --kube-version 1.34.0 --set replicas=2 \
  --set 'watchNamespaces={apps,data}' --set argocd.healthChecks.enabled=true)"
grep -q "^kind: ClusterRole\$" <<<"$scoped" && { echo "namespaced install must not create a ClusterRole"; exit 1; }
[ "$(grep -c '^kind: RoleBinding$' <<<"$scoped")" = 3 ] || { echo "expected RoleBindings in apps, data and the Lease's namespace"; exit 1; }
grep -q 'value: "apps,data"' <<<"$scoped" || { echo "watched namespaces not passed to the operator"; exit 1; }
grep -q 'name: COFFER_LEADER_ELECT' <<<"$scoped" || { echo "two replicas without leader election"; exit 1; }
app_version="$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' charts/coffer/Chart.yaml)"
grep -q "image: \"ghcr.io/coffer-dev/coffer-operator:$app_version\"" <<<"$all" || { echo "operator image is not the appVersion's"; exit 1; }
grep -A1 'name: COFFER_SERVER_IMAGE' <<<"$all" | grep -q "value: \"ghcr.io/coffer-dev/coffer-server:$app_version\"" \
  || { echo "the operator's default server image is not the appVersion's"; exit 1; }
grep -q 'resource.customizations.health.coffer.dev_AccessKey' <<<"$scoped" || { echo "no Argo CD health check"; exit 1; }

# The plain install is the chart rendered with its defaults, and the Argo CD patch carries
# the chart's health check: neither may drift from the chart.
diff <(tail -n +3 manifests/install/operator.yaml) \
  <("$helm" template coffer charts/coffer --namespace coffer-system --kube-version 1.34.0) \
  || { echo "manifests/install/operator.yaml is stale: re-render it (see its header)"; exit 1; }
lua_in_patch="$(sed -n '/resource.customizations.health.coffer.dev_ObjectStore: |/,/^  resource/p' manifests/argocd/argocd-cm-health.yaml | sed '1d;$d' | sed 's/^    //')"
[ "$lua_in_patch" = "$(cat charts/coffer/files/argocd-health.lua)" ] \
  || { echo "manifests/argocd/argocd-cm-health.yaml does not carry charts/coffer/files/argocd-health.lua"; exit 1; }

if command -v kubectl >/dev/null; then
  kubectl kustomize manifests/install >/dev/null
  kubectl kustomize manifests/samples >/dev/null
fi
echo "charts and manifests: ok"
